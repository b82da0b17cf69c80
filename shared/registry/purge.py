"""`tollgate systems purge ID`: erase a system (GDPR): its stored content, its usage records and
its registry entry, and say what was removed.

Usage files are rewritten without the system's lines: a folder's file atomically (a new file
renamed over it), a blob downloaded, filtered and uploaded again as an append blob, only if
its ETag has not changed meanwhile. Files of the current hour are still being appended to by
running instances, so they are left alone (and reported) unless `include_current_hour` says
no gateway is writing; a file that changed while being rewritten is reported, not rewritten.
Run the command again after the hour to finish.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.registry.systems import SYSTEM_ID_PATTERN, RegistryError
from shared.settings import Settings
from shared.storage.append import MAX_APPEND
from shared.storage.location import Container, parse_location

STILL_WRITTEN = "still being written (current hour); run again after the hour"
CHANGED = "changed while purging; run again"


@dataclass
class PurgeReport:
    system: str
    registry: str = "absent"  # "deleted", or "absent" (already gone)
    content_files: int = 0
    cache_entries: int = 0
    usage_records_removed: dict[str, int] = field(default_factory=dict)  # file -> lines
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"file", "records", "reason"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "registry": self.registry,
            "content_files_deleted": self.content_files,
            "cache_entries_deleted": self.cache_entries,
            "usage_records_removed": dict(sorted(self.usage_records_removed.items())),
            "usage_records_total": sum(self.usage_records_removed.values()),
            "skipped": self.skipped,
            "complete": not self.skipped,
        }


def checked_system_id(system_id: str) -> str:
    """Also a path and prefix component: never anything but a valid id."""
    if not SYSTEM_ID_PATTERN.match(system_id):
        raise RegistryError("a system id is 1-64 letters, digits, '.', '_' or '-'")
    return system_id


def without_system(data: bytes, system: str) -> tuple[bytes, int]:
    """The JSON lines that are not `system`'s, and how many were dropped."""
    kept, dropped = [], 0
    for line in data.splitlines(keepends=True):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("system") == system:
            dropped += 1
        else:
            kept.append(line)
    return b"".join(kept), dropped


def is_current_hour(name: str, now: datetime) -> bool:
    """`<yyyy>/<mm>/<dd>/<hh>/<instance>.jsonl`: is its hour `now`'s (or later)?"""
    parts = name.split("/")
    try:
        y, m, d, h = (int(p) for p in parts[-5:-1])
        hour = datetime(y, m, d, h, tzinfo=UTC)
    except ValueError:
        return True  # not a usage file name: leave it alone
    return hour >= now.replace(minute=0, second=0, microsecond=0)


async def purge_content(
    location: str, connection_string: str | None, client_id: str | None, system: str
) -> int:
    """Delete everything under the system's prefix; how many files or blobs."""
    parsed = parse_location(location, connection_string)
    system = checked_system_id(system)
    if isinstance(parsed, Path):
        root = parsed / system
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            path.unlink()
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
            folder.rmdir()
        if root.is_dir():
            root.rmdir()
        return len(files)
    handle = Container(parsed, client_id)
    container = handle.client
    try:
        if not await container.exists():
            return 0
        count = 0
        async for blob in container.list_blobs(name_starts_with=handle.prefix + system + "/"):
            await container.delete_blob(blob.name)
            count += 1
        return count
    finally:
        await handle.aclose()


async def purge_usage(
    location: str,
    connection_string: str | None,
    client_id: str | None,
    system: str,
    report: PurgeReport,
    *,
    include_current_hour: bool = False,
    now: datetime | None = None,
) -> None:
    parsed = parse_location(location, connection_string)
    now = now or datetime.now(UTC)
    if isinstance(parsed, Path):
        if parsed.is_dir():
            for path in sorted(parsed.rglob("*.jsonl")):
                name = path.relative_to(parsed).as_posix()
                live = is_current_hour(name, now) and not include_current_hour
                _purge_file(path, name, system, report, live)
        return
    handle = Container(parsed, client_id)
    container = handle.client
    try:
        if not await container.exists():
            return
        prefix = handle.prefix
        async for blob in container.list_blobs(name_starts_with=prefix):
            if not blob.name.endswith(".jsonl"):
                continue
            name = blob.name[len(prefix) :]
            live = is_current_hour(name, now) and not include_current_hour
            await _purge_blob(container, blob.name, name, system, report, live)
    finally:
        await handle.aclose()


def _purge_file(path: Path, name: str, system: str, report: PurgeReport, live: bool) -> None:
    before = path.stat()
    data, dropped = without_system(path.read_bytes(), system)
    if not dropped:
        return
    if live:
        report.skipped.append({"file": name, "records": dropped, "reason": STILL_WRITTEN})
        return
    temporary = path.with_name(f".{path.name}.purge")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.chmod(temporary, 0o600)
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        temporary.unlink()
        report.skipped.append({"file": name, "records": dropped, "reason": CHANGED})
        return
    os.replace(temporary, path)
    report.usage_records_removed[name] = dropped


async def _purge_blob(
    container: Any, blob_name: str, name: str, system: str, report: PurgeReport, live: bool
) -> None:
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    client = container.get_blob_client(blob_name)
    downloaded = await client.download_blob()
    data, dropped = without_system(await downloaded.readall(), system)
    if not dropped:
        return
    if live:
        report.skipped.append({"file": name, "records": dropped, "reason": STILL_WRITTEN})
        return
    try:  # an append blob again, so a late append by its instance still works
        await client.create_append_blob(
            etag=downloaded.properties.etag, match_condition=MatchConditions.IfNotModified
        )
    except ResourceModifiedError:
        report.skipped.append({"file": name, "records": dropped, "reason": CHANGED})
        return
    for start in range(0, len(data), MAX_APPEND):
        await client.append_block(data[start : start + MAX_APPEND])
    report.usage_records_removed[name] = dropped


async def purge_cache(settings: Settings, system_id: str, spec: Any) -> int:
    """Its kept answers, and the whole shared scope it named, whose answers may be its own.
    Without Redis, kept answers live in each gateway process: its registry entry gone, no
    request finds them (its scope goes with it) and they are evicted at their TTL."""
    if not settings.redis_url:
        return 0
    from shared.cache.key import scope_prefix
    from shared.cache.policy import shared_scope
    from shared.cache.store_redis import RedisAnswers
    from shared.storage.redis_client import admin_client

    prefixes = [scope_prefix(f"s:{system_id}")]
    named = ((spec or {}).get("cache") or {}).get("scope") if isinstance(spec, dict) else None
    if isinstance(named, str) and named:
        prefixes.append(scope_prefix(shared_scope(named)))
    client, credential = admin_client(settings)
    try:
        return await RedisAnswers(client, 0).purge(prefixes)
    finally:
        await client.aclose()
        if credential is not None:
            await credential.close()


async def purge_system(
    settings: Settings, system_id: str, *, include_current_hour: bool = False
) -> PurgeReport:
    """Registry entry first (no new traffic within the refresh interval), then content, then
    usage records; one audit entry says what was removed."""
    from shared.registry.admin import edit, take_system
    from shared.registry.audit import AuditLog, actor, public_view
    from shared.registry.store import store_from_settings

    system_id = checked_system_id(system_id)
    report = PurgeReport(system_id)
    store = store_from_settings(settings)
    try:
        before = await edit(store, take_system(system_id), recorded_by_caller=True)
    finally:
        await store.aclose()
    report.registry = "deleted" if before is not None else "absent"
    where = (settings.storage_connection_string, settings.azure_client_id)
    report.content_files = await purge_content(settings.content_log, *where, system_id)
    report.cache_entries = await purge_cache(settings, system_id, before)
    await purge_usage(
        settings.usage_records, *where, system_id, report, include_current_hour=include_current_hour
    )
    audit = AuditLog.from_settings(settings)
    try:
        when = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        entry = {
            "time": when,
            "actor": actor(),
            "action": "systems purge",
            "target": system_id,
            "before": public_view(before),
            "after": None,
            "removed": report.to_dict(),
        }
        await audit.append([entry])
    finally:
        await audit.aclose()
    return report
