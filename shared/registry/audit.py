"""The audit log: every change to systems, keys and limits (who, when, what, before and after,
never a secret), appended to a log of its own and read with `tollgate audit`."""

from __future__ import annotations

import copy
import getpass
import json
import os
import socket
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from shared.settings import Settings
from shared.storage.append import RecordWriter, record_writer
from shared.storage.documents import results_store
from shared.storage.location import parse_location
from shared.usage.sink import instance_id

Document = dict[str, Any]
DEFAULT_AUDIT_LOG = Settings.from_env({}).audit_log


def audit_location(settings: Settings, registry: Path | None = None) -> str:
    """Where the audit log is: TOLLGATE_AUDIT_LOG when it is set; else the `audit` folder beside
    a registry file (`registry`, or the one settings name), so a registry and its history stay
    together wherever it is; else the default folder."""
    if settings.audit_log != DEFAULT_AUDIT_LOG:
        return settings.audit_log
    if registry is None:
        local = parse_location(settings.registry, settings.storage_connection_string)
        registry = local if isinstance(local, Path) else None
    return settings.audit_log if registry is None else str(registry.parent / "audit")


def actor() -> str:
    """Who is making the change: TOLLGATE_ACTOR when set (e.g. an operator's UPN), else the OS
    user on this host."""
    return os.environ.get("TOLLGATE_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def public_view(system: Any) -> Any:
    """A system as the audit log shows it: everything but key hashes."""
    if not isinstance(system, dict):
        return system
    view = copy.deepcopy(system)
    for record in (view.get("keys") or {}).values():
        if isinstance(record, dict):
            record.pop("hash", None)
    return view


def changes(before: Document, after: Document, action: str, who: str) -> list[dict[str, Any]]:
    """One entry per system the edit changed, and per blocklist."""
    old, new = before.get("systems", {}), after.get("systems", {})
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        {
            "time": now,
            "actor": who,
            "action": action,
            "target": system_id,
            "before": public_view(old.get(system_id)),
            "after": public_view(new.get(system_id)),
        }
        for system_id in sorted(set(old) | set(new))
        if old.get(system_id) != new.get(system_id)
    ] + _blocklist_changes(before, after, action, who, now)


def _blocklist_changes(
    before: Document, after: Document, action: str, who: str, now: str
) -> list[dict[str, Any]]:
    """One entry per blocklist the edit changed (target `blocklist:<name>`)."""
    old, new = before.get("blocklists") or {}, after.get("blocklists") or {}
    return [
        {
            "time": now,
            "actor": who,
            "action": action,
            "target": f"blocklist:{name}",
            "before": old.get(name),
            "after": new.get(name),
        }
        for name in sorted(set(old) | set(new))
        if old.get(name) != new.get(name)
    ]


class AuditLog:
    def __init__(self, writer: RecordWriter):
        self._writer = writer
        self._instance = instance_id()

    @classmethod
    def from_settings(cls, settings: Settings, registry: Path | None = None) -> AuditLog:
        """The audit log of the registry settings name (or of the `registry` file given)."""
        location = audit_location(settings, registry)
        writer = record_writer(
            location, settings.storage_connection_string, settings.azure_client_id
        )
        return cls(writer)

    async def append(self, entries: list[dict[str, Any]]) -> None:
        if not entries:
            return
        data = "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries)
        await self._writer.append(
            f"{datetime.now(UTC):%Y/%m/%d}/{self._instance}.jsonl", data.encode()
        )

    async def aclose(self) -> None:
        await self._writer.aclose()


async def read_audit(settings: Settings, since: date, until: date) -> list[dict[str, Any]]:
    store = results_store(
        audit_location(settings),
        settings.storage_connection_string,
        settings.azure_client_id,
        suffix=".jsonl",
    )
    try:
        entries = []
        for name in await store.names(since, until):
            entries += [json.loads(line) for line in (await store.get(name)).splitlines() if line]
    finally:
        await store.aclose()
    return sorted(entries, key=lambda e: str(e.get("time", "")))
