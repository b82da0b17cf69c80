"""Where upstream API keys come from: environment variables locally, Azure Key Vault in Azure.

Secret values never appear in exception messages, reprs or logs; only secret *names* do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Protocol

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

__all__ = [
    "ENV_PREFIX",
    "EnvSecretProvider",
    "KeyVaultSecretProvider",
    "SecretNotFound",
    "SecretProvider",
    "SecretProviderError",
    "build_credential",
    "build_secret_provider",
    "running_in_azure",
]

ENV_PREFIX = "TOLLGATE_SECRET_"
# Any one of these is set by the Azure hosting environments that expose a managed identity.
_AZURE_MARKERS = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "WEBSITE_INSTANCE_ID")


class SecretNotFound(Exception):
    """The secret does not exist (or is empty) in the provider."""


class SecretProviderError(Exception):
    """The provider could not be asked: network, auth, permission or configuration failure."""


class SecretProvider(Protocol):
    async def get(self, name: str) -> str: ...

    async def aclose(self) -> None: ...


class EnvSecretProvider:
    """Secret `name` lives in env var ``TOLLGATE_SECRET_<NAME>`` (see `env_var_name`)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    @staticmethod
    def env_var_name(name: str) -> str:
        return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()

    async def get(self, name: str) -> str:
        # os.environ is read per call so a changed variable (a rotation) is picked up.
        environ = os.environ if self._environ is None else self._environ
        variable = self.env_var_name(name)
        value = environ.get(variable)
        if not value:
            raise SecretNotFound(f"secret {name!r} not found: env var {variable} is unset or empty")
        return value

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        source = "os.environ" if self._environ is None else "mapping"
        return f"EnvSecretProvider(source={source})"


class KeyVaultSecretProvider:
    """Reads the latest version of each secret through one aio SecretClient."""

    def __init__(self, vault_url: str, credential: AsyncTokenCredential, **client_kwargs: Any):
        self._vault_url = vault_url
        self._credential = credential
        from azure.keyvault.secrets.aio import SecretClient  # only when a vault is configured

        self._client = SecretClient(vault_url, credential, **client_kwargs)

    async def get(self, name: str) -> str:
        where = f"secret {name!r} in {self._vault_url}"
        try:
            secret = await self._client.get_secret(name)
        except ResourceNotFoundError as exc:
            raise SecretNotFound(f"{where} not found") from exc
        except HttpResponseError as exc:
            code = exc.error.code if exc.error is not None else None
            detail = f"HTTP {exc.status_code}, code {code}, {type(exc).__name__}"
            raise SecretProviderError(f"{where}: Key Vault request failed ({detail})") from exc
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise SecretProviderError(f"{where}: Key Vault unreachable ({exc})") from exc
        except ValueError as exc:
            # e.g. the challenge's resource does not match the vault's domain
            raise SecretProviderError(f"{where}: Key Vault client refused ({exc})") from exc
        if not secret.value:
            raise SecretNotFound(f"{where} has no value")
        return secret.value

    async def aclose(self) -> None:
        await self._client.close()
        await self._credential.close()

    def __repr__(self) -> str:
        return f"KeyVaultSecretProvider(vault_url={self._vault_url!r})"


def running_in_azure(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    return any(environ.get(marker) for marker in _AZURE_MARKERS)


def build_credential(client_id: str | None) -> AsyncTokenCredential:
    """ManagedIdentityCredential in Azure; DefaultAzureCredential (az login, env, ...) elsewhere."""
    # Imported here: azure-identity costs ~30 MB and a hosting that needs no identity skips it.
    from azure.identity.aio import DefaultAzureCredential, ManagedIdentityCredential

    if running_in_azure():
        return ManagedIdentityCredential(client_id=client_id)
    # The aio DefaultAzureCredential has no interactive browser credential, so nothing to exclude.
    # Passing managed_identity_client_id=None would override its AZURE_CLIENT_ID fallback.
    if client_id is None:
        return DefaultAzureCredential()
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def build_secret_provider(
    vault_url: str | None,
    client_id: str | None,
    ca_file: str | None = None,
    verify_challenge_resource: bool = True,
) -> SecretProvider:
    """Key Vault when `vault_url` is set, else env vars.

    `ca_file` replaces the system trust store for the vault connection (private CA, tests); TLS
    verification itself is never turned off.
    """
    if not vault_url:
        return EnvSecretProvider()
    client_kwargs: dict[str, Any] = {"verify_challenge_resource": verify_challenge_resource}
    if ca_file:
        client_kwargs["connection_verify"] = ca_file
    return KeyVaultSecretProvider(vault_url, build_credential(client_id), **client_kwargs)
