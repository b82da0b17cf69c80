"""Where upstream credentials come from, behind one provider: keys (Key Vault or the environment)
and, for upstreams that take the gateway's own identity, Entra ID access tokens.

An upstream with `"auth": "entra"` names its credential `entra:<scope>`; this provider answers
those names with a token and passes every other name to the key provider (Key Vault or the
environment), so the key cache, its refresh on a 401, the relay and the probe treat both alike.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError

from shared.auth.secrets import (
    SecretNotFound,
    SecretProvider,
    SecretProviderError,
    build_credential,
    build_secret_provider,
)
from shared.settings import Settings

ENTRA_PREFIX = "entra:"
SIMULATOR_KEY_SECRET = "simulator-key"  # noqa: S105 - the name of a secret, not a secret
DEFAULT_SIMULATOR_KEY = "sim-key"
COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"


def entra_secret_name(scope: str) -> str:
    return ENTRA_PREFIX + scope


class EntraTokenProvider:
    def __init__(
        self, keys: SecretProvider, credential: Callable[[], AsyncTokenCredential]
    ) -> None:
        self._keys = keys
        self._make_credential = credential  # built on first use: most setups never need it
        self._credential: AsyncTokenCredential | None = None

    async def get(self, name: str) -> str:
        if not name.startswith(ENTRA_PREFIX):
            return await self._keys.get(name)
        scope = name.removeprefix(ENTRA_PREFIX)
        if self._credential is None:
            self._credential = self._make_credential()
        try:
            token = await self._credential.get_token(scope)
        except ClientAuthenticationError as exc:  # the message may name endpoints, never keys
            raise SecretProviderError(f"no Entra token for {scope}: {type(exc).__name__}") from exc
        return token.token

    async def aclose(self) -> None:
        await self._keys.aclose()
        if self._credential is not None:
            await self._credential.close()

    def __repr__(self) -> str:
        return f"EntraTokenProvider(keys={self._keys!r})"


def secret_provider_from(settings: Settings) -> SecretProvider:
    """Upstream keys, and Entra tokens for upstreams that take the gateway's identity."""
    keys = build_secret_provider(
        settings.keyvault_url,
        settings.azure_client_id,
        ca_file=settings.keyvault_ca_file,
        verify_challenge_resource=settings.keyvault_verify_challenge_resource,
    )
    if not (settings.config_path or settings.config_json or settings.keyvault_url):
        keys = SimulatorKeyFallback(keys, Path(settings.registry).parent)
    return EntraTokenProvider(keys, lambda: build_credential(settings.azure_client_id))


class SimulatorKeyFallback:
    """With the embedded configuration (every model on the built-in simulator), its key when
    no variable sets it: the one `tollgate run` keeps beside the registry, else the default
    of `tollgate simulator`. The simulator is no real upstream: its key guards nothing."""

    def __init__(self, keys: SecretProvider, folder: Path) -> None:
        self._keys, self._folder = keys, folder

    async def get(self, name: str) -> str:
        try:
            return await self._keys.get(name)
        except SecretNotFound:
            if name != SIMULATOR_KEY_SECRET:
                raise
        kept = self._folder / SIMULATOR_KEY_SECRET
        return _first_line(kept) or DEFAULT_SIMULATOR_KEY

    async def aclose(self) -> None:
        await self._keys.aclose()


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
