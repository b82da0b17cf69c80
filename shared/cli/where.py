"""Which registry, audit log, usage records and content store a registry command works on.

The settings are the environment's, except that local paths are made absolute, and a default
(`.tollgate/...`, relative) is looked for in the project: the nearest folder, from the current
one up, that holds a `.tollgate/` folder. So `tollgate systems list` run from a subfolder of the
project reads the project's registry, and every command says which registry it uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from shared.registry.audit import audit_location
from shared.settings import Settings
from shared.storage.location import parse_location

MARKER = ".tollgate"
_LOCATIONS = {  # setting -> the field of Settings that holds it
    "TOLLGATE_REGISTRY": "registry",
    "TOLLGATE_USAGE_RECORDS": "usage_records",
    "TOLLGATE_CONTENT_LOG": "content_log",
}


def project_root(cwd: Path) -> Path:
    """The nearest folder from `cwd` up that holds `.tollgate/`; else `cwd`."""
    for folder in (cwd, *cwd.parents):
        if (folder / MARKER).is_dir():
            return folder
    return cwd


def resolved_environment(environ: Mapping[str, str], cwd: Path) -> dict[str, str]:
    """The environment with every local location absolute: a setting that is given, against
    `cwd`; a default, against the project root."""
    env, root = dict(environ), project_root(cwd)
    defaults = Settings.from_env({})
    connection = environ.get("TOLLGATE_STORAGE_CONNECTION_STRING", "").strip() or None
    for name, field in _LOCATIONS.items():
        given = environ.get(name, "").strip()
        value, base = (given, cwd) if given else (getattr(defaults, field), root)
        env[name] = _absolute(value, base, connection)
    given = environ.get("TOLLGATE_AUDIT_LOG", "").strip()
    audit = given or audit_location(Settings.from_env(env))  # beside a registry file
    env["TOLLGATE_AUDIT_LOG"] = _absolute(audit, cwd if given else root, connection)
    return env


def _absolute(location: str, base: Path, connection_string: str | None) -> str:
    parsed = parse_location(location, connection_string)
    if isinstance(parsed, Path) and not parsed.is_absolute():
        return str(base / parsed)
    return location


def cli_settings() -> Settings:
    return Settings.from_env(resolved_environment(os.environ, Path.cwd()))


def local_path(location: str, settings: Settings) -> Path | None:
    """The local file or folder a location names; None for a blob location."""
    parsed = parse_location(location, settings.storage_connection_string)
    return parsed if isinstance(parsed, Path) else None


def describe(location: str, settings: Settings) -> str:
    """A location as messages show it: a path, a URL, or a container in the account of
    TOLLGATE_STORAGE_CONNECTION_STRING."""
    if local_path(location, settings) is not None or location.startswith("https://"):
        return location
    return f"{location} (in TOLLGATE_STORAGE_CONNECTION_STRING's account)"
