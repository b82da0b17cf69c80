"""The gateway configuration: upstream deployments and the public models mapped onto them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shared.auth.upstream_credentials import SIMULATOR_KEY_SECRET
from shared.errors import ConfigError
from shared.routes import Operation
from shared.settings import Settings
from shared.upstream.upstreams import Upstream, parse_upstream, required
from shared.usage.counts import NO_UNITS, Tokens, Units

SEED_CHAT_MODELS = (
    "gpt-4o",
    "gpt-4-turbo",
    "gpt-35-turbo",
    "gpt-35-turbo-16k",
    "gpt-35-turbo-0613",
)
SEED_EMBEDDING_MODELS = ("text-embedding-3-small", "text-embedding-ada-002")
SEED_COMPLETIONS_MODEL = "gpt-35-turbo-instruct"
SEED_IMAGE_MODELS = ("dall-e-3", "gpt-image-1")
SEED_AUDIO_MODELS = {"whisper-1": "transcriptions", "tts-1": "speech"}
SEED_FOUNDRY_MODELS = {"DeepSeek-R1": "chat", "Cohere-embed-v3-multilingual": "embeddings"}


@dataclass(frozen=True)
class Prices:
    """A model's prices in the price table's currency: per million tokens (online, and in a
    batch), per image, per minute of audio and per million characters of speech."""

    prompt: float = 0.0
    completion: float = 0.0
    cached_prompt: float | None = None  # None: cached prompt tokens at the prompt price
    image: float = 0.0
    audio_minute: float = 0.0
    million_characters: float = 0.0
    batch_prompt: float | None = None  # None: a batch's tokens at the online prices
    batch_completion: float | None = None

    def cost(self, tokens: Tokens, units: Units = NO_UNITS, batch: bool = False) -> float:
        prompt, completion = self.prompt, self.completion
        if batch:
            prompt = prompt if self.batch_prompt is None else self.batch_prompt
            completion = completion if self.batch_completion is None else self.batch_completion
        cached = min(tokens.cached, tokens.prompt) if self.cached_prompt is not None else 0
        per_million = (
            (tokens.prompt - cached) * prompt
            + cached * (self.cached_prompt or 0.0)
            + tokens.completion * completion
            + units.characters * self.million_characters
        )
        return (
            per_million / 1e6
            + units.images * self.image
            + units.audio_seconds / 60 * (self.audio_minute)
        )


@dataclass(frozen=True)
class PoolMember:
    upstream: Upstream
    priority: int  # lower goes first; the next group is used only when a group is exhausted
    weight: int  # share of traffic within its priority group


@dataclass(frozen=True)
class PublicModel:
    name: str
    operation: Operation  # as served on one route (config.served), else the model's kind
    pool: tuple[PoolMember, ...]
    tokenizer: str  # the model name whose encoding counts this model's tokens
    prices: Prices = field(default_factory=lambda: Prices())
    serves: frozenset[Operation] = frozenset()  # the operations it answers (its kind if empty)
    pinned_for: str = ""  # the stored response whose deployment this pool was narrowed to
    batch: Upstream | None = None  # the deployment that runs its batch lines (on the files one)

    @property
    def upstream(self) -> Upstream:
        """The first choice: the heaviest member of the first priority group."""
        return min(self.pool, key=lambda m: (m.priority, -m.weight)).upstream


@dataclass(frozen=True)
class GatewayConfig:
    upstreams: dict[str, Upstream]
    models: dict[str, PublicModel]
    # Each model as served by each operation it serves (chat models: chat and responses).
    served: dict[tuple[str, Operation], PublicModel] = field(default_factory=dict)
    files: Upstream | None = None  # where files and batches live (None: not served)
    currency: str = "USD"  # the price table's

    def cost(
        self, model: str, tokens: Tokens, units: Units = NO_UNITS, batch: bool = False
    ) -> float:
        entry = self.models.get(model)
        return 0.0 if entry is None else entry.prices.cost(tokens, units, batch)


def load_config(settings: Settings) -> GatewayConfig:
    if settings.config_json:
        return parse_config(_decode(settings.config_json, "TOLLGATE_CONFIG_JSON"))
    if settings.config_path:
        text = Path(settings.config_path).read_text(encoding="utf-8")
        return parse_config(_decode(text, settings.config_path))
    return simulator_config(settings.simulator_url)


def simulator_config(simulator_url: str) -> GatewayConfig:
    """The embedded default: every seed model served by the built-in simulator."""
    upstreams: dict[str, Any] = {}
    models: dict[str, Any] = {}
    for name in SEED_CHAT_MODELS + SEED_EMBEDDING_MODELS:
        upstreams[f"sim-{name}"] = {
            "type": "azure",
            "endpoint": simulator_url,
            "deployment": name,
            "key_secret": SIMULATOR_KEY_SECRET,
        }
        kind = "embeddings" if name in SEED_EMBEDDING_MODELS else "chat"
        models[name] = {"upstream": f"sim-{name}", "kind": kind}
    upstreams["sim-instruct"] = {**upstreams["sim-gpt-4o"], "deployment": SEED_COMPLETIONS_MODEL}
    models[SEED_COMPLETIONS_MODEL] = {"upstream": "sim-instruct", "kind": "completions"}
    for name in SEED_IMAGE_MODELS:
        upstreams[f"sim-{name}"] = {**upstreams["sim-gpt-4o"], "deployment": name}
        models[name] = {"upstream": f"sim-{name}", "kind": "images"}
    for name, kind in SEED_AUDIO_MODELS.items():
        upstreams[f"sim-{name}"] = {**upstreams["sim-gpt-4o"], "deployment": name}
        models[name] = {"upstream": f"sim-{name}", "kind": kind}
    for name, kind in SEED_FOUNDRY_MODELS.items():  # Azure AI Foundry catalogue models
        upstreams[f"sim-{name}"] = {
            "type": "foundry",
            "endpoint": f"{simulator_url}/models",
            "model": name,
            "key_secret": SIMULATOR_KEY_SECRET,
            "stream_usage": True,
        }
        models[name] = {"upstream": f"sim-{name}", "kind": kind}
    files = {"upstream": "sim-gpt-4o"}  # the simulator's one resource holds files and batches
    return parse_config({"upstreams": upstreams, "models": models, "files": files})


def parse_config(raw: Any) -> GatewayConfig:
    if not isinstance(raw, dict):
        raise ConfigError("gateway configuration must be a JSON object")
    upstreams = {
        name: parse_upstream(name, spec) for name, spec in _section(raw, "upstreams").items()
    }
    files = _files_upstream(raw.get("files"), upstreams)
    models = {
        name: _with_batch(_parse_model(name, spec, upstreams), spec, upstreams, files)
        for name, spec in _section(raw, "models").items()
    }
    served = {
        (name, op): replace(model, operation=op)
        for name, model in models.items()
        for op in model.serves
    }
    currency = raw.get("currency", "USD")
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        raise ConfigError("'currency' is a three-letter code (ISO 4217), e.g. USD or TWD")
    return GatewayConfig(
        upstreams=upstreams, models=models, served=served, files=files, currency=currency
    )


def _files_upstream(spec: Any, upstreams: dict[str, Upstream]) -> Upstream | None:
    """`"files": {"upstream": name}`: the Azure OpenAI resource or OpenAI account (named by
    one of its upstreams) that holds the files and runs the batches."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ConfigError("'files' must be an object naming an upstream")
    name = required(spec, "upstream", "'files'")
    upstream = upstreams.get(name)
    if upstream is None or upstream.kind == "foundry":
        raise ConfigError(f"'files': '{name}' is not an Azure OpenAI or OpenAI upstream")
    return upstream


def _with_batch(
    model: PublicModel, spec: dict[str, Any], upstreams: dict[str, Upstream], files: Upstream | None
) -> PublicModel:
    """The deployment that runs a model's batch lines: `batch_upstream`, else the member of its
    pool on the files resource (a model with neither cannot be named in a batch)."""
    where = f"model '{model.name}'"
    name = spec.get("batch_upstream")
    if name is None:
        on_files = [m.upstream for m in model.pool if files and same_resource(m.upstream, files)]
        return replace(model, batch=on_files[0] if on_files else None)
    upstream = upstreams.get(name) if isinstance(name, str) else None
    if upstream is None:
        raise ConfigError(f"{where}: unknown batch_upstream '{name}'")
    if files is None or not same_resource(upstream, files):
        raise ConfigError(f"{where}: batch_upstream '{name}' is not on the files resource")
    return replace(model, batch=upstream)


def same_resource(a: Upstream, b: Upstream) -> bool:
    """Whether two upstreams share files and batches (one Azure resource, one OpenAI account)."""
    return (a.kind, a.base_url, a.key_secret) == (b.kind, b.base_url, b.key_secret)


def _decode(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON at line {exc.lineno}") from None


def _section(raw: dict[str, Any], key: str) -> dict[str, Any]:
    section = raw.get(key)
    if not isinstance(section, dict) or not section:
        raise ConfigError(f"gateway configuration needs a non-empty '{key}' object")
    return section


def _parse_model(name: str, spec: Any, upstreams: dict[str, Upstream]) -> PublicModel:
    where = f"model '{name}'"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be an object")
    pool = _parse_pool(spec, upstreams, where)
    try:
        operation = Operation(spec.get("kind", "chat"))
        if operation not in _SERVABLE:
            raise ValueError(operation)
    except ValueError:
        kinds = (
            "'chat', 'responses', 'completions', 'embeddings', 'images', 'transcriptions' or "
            "'speech'"
        )
        raise ConfigError(f"{where}: 'kind' must be {kinds}") from None
    serves = _served_by_pool(_serves(spec, operation, where), pool, spec, where)
    tokenizer = spec.get("tokenizer") or name
    if not isinstance(tokenizer, str):
        raise ConfigError(f"{where}: 'tokenizer' must be a model name")
    prices = _prices(spec.get("price") or {}, where)
    return PublicModel(name, operation, pool, tokenizer, prices, serves)


_PRICE_NAMES = (
    "prompt_per_million",
    "completion_per_million",
    "cached_prompt_per_million",
    "per_image",
    "per_audio_minute",
    "per_million_characters",
    "batch_prompt_per_million",
    "batch_completion_per_million",
)
_OPTIONAL_PRICES = {
    "cached_prompt_per_million",
    "batch_prompt_per_million",
    "batch_completion_per_million",
}


def _prices(price: Any, where: str) -> Prices:
    if not isinstance(price, dict):
        raise ConfigError(f"{where}: 'price' must be an object")
    unknown = set(price) - set(_PRICE_NAMES)
    if unknown:
        raise ConfigError(f"{where}: unknown price '{sorted(unknown)[0]}'")
    values: list[float | None] = []
    for name in _PRICE_NAMES:
        value = price.get(name)
        if value is None and name in _OPTIONAL_PRICES:
            values.append(None)
            continue
        value = 0 if value is None else value
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"{where}: price '{name}' must be a number >= 0")
        values.append(float(value))
    prompt, completion, cached, image, minute, characters, batch_in, batch_out = values
    return Prices(
        prompt or 0.0,
        completion or 0.0,
        cached,
        image or 0.0,
        minute or 0.0,
        characters or 0.0,
        batch_in,
        batch_out,
    )


_SERVABLE = {
    Operation.CHAT: (Operation.CHAT, Operation.RESPONSES),
    Operation.RESPONSES: (Operation.RESPONSES,),
    Operation.EMBEDDINGS: (Operation.EMBEDDINGS,),
    Operation.COMPLETIONS: (Operation.COMPLETIONS,),
    Operation.IMAGES: (Operation.IMAGES, Operation.IMAGE_EDITS),
    Operation.TRANSCRIPTIONS: (Operation.TRANSCRIPTIONS, Operation.TRANSLATIONS),
    Operation.SPEECH: (Operation.SPEECH,),
}


def _served_by_pool(
    serves: frozenset[Operation], pool: tuple[PoolMember, ...], spec: dict[str, Any], where: str
) -> frozenset[Operation]:
    """What every member of the pool can answer: a chat model with a Foundry deployment in its
    pool answers chat only, unless `serves` asked for more (then the configuration is wrong)."""
    for member in pool:
        missing = serves - member.upstream.operations
        if missing and (spec.get("serves") is not None or serves == missing):
            names = ", ".join(sorted(op.value for op in missing))
            message = f"{where}: upstream '{member.upstream.name}' cannot serve {names}"
            raise ConfigError(message)
        serves -= missing
    return serves


def _serves(spec: dict[str, Any], kind: Operation, where: str) -> frozenset[Operation]:
    """A chat model answers chat completions and responses unless `serves` narrows it."""
    given = spec.get("serves")
    if given is None:
        return frozenset(_SERVABLE[kind])
    allowed = {op.value for op in _SERVABLE[kind]}
    if not isinstance(given, list) or not given or not set(given) <= allowed:
        raise ConfigError(f"{where}: 'serves' is a list of {', '.join(sorted(allowed))}")
    return frozenset(Operation(op) for op in given)


def _parse_pool(
    spec: dict[str, Any], upstreams: dict[str, Upstream], where: str
) -> tuple[PoolMember, ...]:
    """`"upstream": "name"`, or `"upstreams": [{"upstream", "priority", "weight"}, ...]`."""
    members = spec.get("upstreams")
    if members is None:
        members = [{"upstream": required(spec, "upstream", where)}]
    if not isinstance(members, list) or not members:
        raise ConfigError(f"{where}: 'upstreams' must be a non-empty list")
    pool: list[PoolMember] = []
    for member in members:
        if not isinstance(member, dict):
            raise ConfigError(f"{where}: each of 'upstreams' must be an object")
        name = required(member, "upstream", where)
        if name not in upstreams:
            raise ConfigError(f"{where}: unknown upstream '{name}'")
        priority, weight = member.get("priority", 1), member.get("weight", 1)
        if not _whole(priority) or not _whole(weight) or weight < 1:
            raise ConfigError(f"{where}: priority and weight are whole numbers (weight >= 1)")
        pool.append(PoolMember(upstreams[name], priority, weight))
    if len({m.upstream.name for m in pool}) != len(pool):
        raise ConfigError(f"{where}: an upstream appears twice in its pool")
    return tuple(pool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
