"""Run-time configuration of the simulator, changeable through ``POST /_sim/config``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


def _default_keys() -> set[str]:
    return {"sim-key"}


@dataclass
class SimulatorConfig:
    api_keys: set[str] = field(default_factory=_default_keys)
    latency_ms: float = 0
    ttft_ms: float = 0
    tokens_per_second: float = 0
    completion_tokens: int = 16
    background_ms: float = 0  # how long a `background: true` response takes to finish
    batch_ms: float = 1500  # how long a batch takes from creation to `completed`
    entra_audience: str = ""  # when set, Entra bearer tokens for this audience are accepted

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["api_keys"] = sorted(self.api_keys)
        return data


_FLOAT_FIELDS = ("latency_ms", "ttft_ms", "tokens_per_second", "background_ms", "batch_ms")


def apply_config_update(config: SimulatorConfig, update: Any) -> None:
    """Validate ``update`` fully, then apply it; raises ValueError and changes nothing on error."""
    if not isinstance(update, dict):
        raise ValueError("config update must be a JSON object")
    unknown = set(update) - set(SimulatorConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown config fields: {sorted(unknown)}")
    changes: dict[str, Any] = {}
    for name in _FLOAT_FIELDS:
        if name in update:
            changes[name] = _non_negative_number(name, update[name])
    if "completion_tokens" in update:
        value = update["completion_tokens"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("completion_tokens must be an integer >= 1")
        changes["completion_tokens"] = value
    if "api_keys" in update:
        keys = update["api_keys"]
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("api_keys must be a list of non-empty strings")
        changes["api_keys"] = set(keys)
    if "entra_audience" in update:
        audience = update["entra_audience"]
        if not isinstance(audience, str):
            raise ValueError("entra_audience must be a string")
        changes["entra_audience"] = audience
    for name, value in changes.items():
        setattr(config, name, value)


def _non_negative_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0")
    return float(value)
