"""The upstream deployments the gateway calls: their kinds (Azure OpenAI, OpenAI, Azure AI
Foundry's model-inference API), each one's URL per operation, auth header and what it can
answer, read from the gateway configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.auth.upstream_credentials import COGNITIVE_SERVICES_SCOPE, entra_secret_name
from shared.errors import ConfigError
from shared.routes import Operation

DEFAULT_AZURE_API_VERSION = "2024-10-21"
# Azure serves the Responses API on its v1 path (no api-version) or on its preview path.
DEFAULT_RESPONSES_API_VERSION = "2025-04-01-preview"
# Azure AI Foundry's model-inference API (DeepSeek, Llama, Mistral and other catalogue models).
DEFAULT_FOUNDRY_API_VERSION = "2024-05-01-preview"

_AZURE_PATHS = {
    Operation.CHAT: "chat/completions",
    Operation.EMBEDDINGS: "embeddings",
    Operation.COMPLETIONS: "completions",
    Operation.IMAGES: "images/generations",
    Operation.IMAGE_EDITS: "images/edits",
    Operation.TRANSCRIPTIONS: "audio/transcriptions",
    Operation.TRANSLATIONS: "audio/translations",
    Operation.SPEECH: "audio/speech",
}
_OPENAI_PATHS = {op: "/" + path for op, path in _AZURE_PATHS.items()}
_FOUNDRY_PATHS = {
    Operation.CHAT: "/models/chat/completions",
    Operation.EMBEDDINGS: "/models/embeddings",
}


@dataclass(frozen=True)
class Upstream:
    name: str
    kind: str  # "azure", "openai" or "foundry"
    base_url: str
    target: str  # Azure deployment name, OpenAI model name, or Foundry deployment name
    key_secret: str
    api_version: str = DEFAULT_AZURE_API_VERSION
    responses_api: str = "v1"  # Azure: "v1" (/openai/v1/responses) or "preview"
    responses_api_version: str = DEFAULT_RESPONSES_API_VERSION
    stream_usage: bool | None = None  # honours stream_options.include_usage (None: by kind)
    entra: bool = False  # the gateway's Entra token (key_secret names its scope), not a key

    @property
    def operations(self) -> frozenset[Operation]:
        """What it can answer: Foundry's model-inference API has chat and embeddings only."""
        if self.kind == "foundry":
            return frozenset(_FOUNDRY_PATHS)
        return frozenset(Operation)

    def url(self, op: Operation) -> str:
        if op is Operation.RESPONSES:
            return self._responses_url()
        if op is Operation.INPUT_TOKENS:
            return self._responses_url("/input_tokens")
        if self.kind == "azure":
            return (
                f"{self.base_url}/openai/deployments/{self.target}/{_AZURE_PATHS[op]}"
                f"?api-version={self.api_version}"
            )
        if self.kind == "foundry":  # the deployment is named in the body's model
            return f"{self.base_url}{_FOUNDRY_PATHS[op]}?api-version={self.api_version}"
        return f"{self.base_url}{_OPENAI_PATHS[op]}"

    def _responses_url(self, tail: str = "") -> str:
        if self.kind != "azure":
            return f"{self.base_url}/responses{tail}"
        if self.responses_api == "preview":
            version = self.responses_api_version
            return f"{self.base_url}/openai/responses{tail}?api-version={version}"
        return f"{self.base_url}/openai/v1/responses{tail}"

    def objects_url(self, tail: str) -> str:
        """Files and batches (`tail`: "files", "batches/{id}/cancel", ...), which live on the
        resource (Azure) or the account (OpenAI), not on a deployment."""
        if self.kind == "azure":
            return f"{self.base_url}/openai/{tail}?api-version={self.api_version}"
        return f"{self.base_url}/{tail}"

    def stored_response_url(self, response_id: str, action: str = "") -> str:
        """A stored response (`action`: "", "cancel" or "input_items"), on this deployment."""
        return self._responses_url(f"/{response_id}" + (f"/{action}" if action else ""))

    @property
    def reports_stream_usage(self) -> bool:
        """Whether it honours `stream_options.include_usage` (Azure: from 2024-09-01; Foundry:
        only when the configuration says so, since not every catalogue model does)."""
        if self.stream_usage is not None:
            return self.stream_usage
        return self.kind == "openai" or self.api_version >= "2024-09-01"

    def auth_headers(self, key: str) -> dict[str, str]:
        if self.kind in ("azure", "foundry") and not self.entra:
            return {"api-key": key}
        return {"Authorization": f"Bearer {key}"}


def parse_upstream(name: str, spec: Any) -> Upstream:
    where = f"upstream '{name}'"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be an object")
    kind = spec.get("type")
    if kind == "azure":
        return Upstream(
            name=name,
            kind="azure",
            base_url=required(spec, "endpoint", where).rstrip("/"),
            target=required(spec, "deployment", where),
            key_secret=_credential(spec, where),
            entra=spec.get("auth") == "entra",
            api_version=spec.get("api_version") or DEFAULT_AZURE_API_VERSION,
            responses_api=one_of(spec, "responses_api", ("v1", "preview"), where),
            responses_api_version=spec.get("responses_api_version")
            or DEFAULT_RESPONSES_API_VERSION,
        )
    if kind == "openai":
        return Upstream(
            name=name,
            kind="openai",
            base_url=spec.get("base_url", "https://api.openai.com/v1").rstrip("/"),
            target=required(spec, "model", where),
            key_secret=required(spec, "key_secret", where),
        )
    if kind == "foundry":
        endpoint = required(spec, "endpoint", where).rstrip("/").removesuffix("/models")
        stream_usage = spec.get("stream_usage", False)
        if not isinstance(stream_usage, bool):
            raise ConfigError(f"{where}: 'stream_usage' must be true or false")
        return Upstream(
            name=name,
            kind="foundry",
            base_url=endpoint,
            target=required(spec, "model", where),
            key_secret=_credential(spec, where),
            entra=spec.get("auth") == "entra",
            api_version=spec.get("api_version") or DEFAULT_FOUNDRY_API_VERSION,
            stream_usage=stream_usage,
        )
    raise ConfigError(f"{where}: 'type' must be 'azure', 'openai' or 'foundry'")


def _credential(spec: dict[str, Any], where: str) -> str:
    """The name of an Azure upstream's credential: its key's secret, or with `"auth": "entra"`
    the scope of the gateway identity's token (Azure OpenAI's and Foundry's by default)."""
    auth = one_of(spec, "auth", ("key", "entra"), where)
    if auth == "key":
        return required(spec, "key_secret", where)
    if "key_secret" in spec:
        raise ConfigError(f'{where}: \'key_secret\' and "auth": "entra" exclude each other')
    scope = spec.get("scope", COGNITIVE_SERVICES_SCOPE)
    if not isinstance(scope, str) or not scope.startswith("https://"):
        raise ConfigError(f"{where}: 'scope' must be an https:// scope")
    return entra_secret_name(scope)


def required(spec: dict[str, Any], field: str, where: str) -> str:
    value = spec.get(field)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: '{field}' is required")
    return value


def one_of(spec: dict[str, Any], field: str, choices: tuple[str, ...], where: str) -> str:
    value = spec.get(field, choices[0])
    if value not in choices:
        raise ConfigError(f"{where}: '{field}' must be one of {', '.join(choices)}")
    return str(value)
