"""Model names given to `systems create` and `update`, checked against the gateway
configuration this host would load (TOLLGATE_CONFIG, TOLLGATE_CONFIG_JSON, else the embedded
simulator models). An unknown name is a warning, never a refusal: the gateway may well run with
another configuration than the operator's machine."""

from __future__ import annotations

from collections.abc import Iterable

from shared.cli.output import warn
from shared.errors import ConfigError
from shared.registry.systems import ALL_MODELS
from shared.settings import Settings


def warn_of_unknown(models: Iterable[str], settings: Settings) -> None:
    wanted = sorted({m for m in models if m != ALL_MODELS})
    if not wanted:
        return
    from shared.upstream.config import load_config  # only when there are names to check

    try:
        known = set(load_config(settings).models)
    except (ConfigError, OSError) as exc:
        warn(f"model names not checked: the gateway configuration cannot be read ({exc})")
        return
    unknown = [m for m in wanted if m not in known]
    if unknown:
        warn(
            f"{_plural(unknown)} not in the gateway configuration ({_source(settings)}): "
            f"{', '.join(unknown)}. Known: {', '.join(sorted(known))}. Kept as given, in case "
            "the gateway's configuration differs from this machine's"
        )


def _plural(unknown: list[str]) -> str:
    return "a model name is" if len(unknown) == 1 else "model names are"


def _source(settings: Settings) -> str:
    if settings.config_json:
        return "TOLLGATE_CONFIG_JSON"
    if settings.config_path:
        return f"TOLLGATE_CONFIG={settings.config_path}"
    return "the embedded simulator models; set TOLLGATE_CONFIG as the gateway has it"
