"""`tollgate audit`: who changed which system, key or limit, when, from what to what."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.cli.dates import day
from shared.cli.differences import difference
from shared.cli.output import note, table, warn
from shared.cli.where import cli_settings, describe, local_path
from shared.registry.audit import audit_location, read_audit

DEFAULT_DAYS = 30


def add_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="read the audit log of registry changes")
    audit.add_argument(
        "--from",
        dest="since",
        type=day,
        metavar="YYYY-MM-DD",
        help=f"first day (UTC); default: {DEFAULT_DAYS} days before --to",
    )
    audit.add_argument(
        "--to",
        dest="until",
        type=day,
        metavar="YYYY-MM-DD",
        help="last day (UTC); default: today",
    )
    audit.add_argument("--system", metavar="ID", help="only changes to this system")
    audit.add_argument("--json", action="store_true", help="the entries, one JSON object a line")
    audit.set_defaults(handler=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    until = args.until or datetime.now(UTC).date()
    since = args.since or until - timedelta(days=DEFAULT_DAYS)
    settings = cli_settings()
    location = audit_location(settings)
    note(f"audit log: {describe(location, settings)}")
    folder = local_path(location, settings)
    if folder is not None and not folder.is_dir():
        warn(f"there is no audit log at {folder}: set TOLLGATE_AUDIT_LOG to the one in use")
    entries = asyncio.run(read_audit(settings, since, until))
    if args.system:
        entries = [e for e in entries if e.get("target") == args.system]
    if args.json:
        for entry in entries:
            print(json.dumps(entry, ensure_ascii=False, sort_keys=True))
        return 0
    rows = [(e["time"], e["actor"], e["action"], e["target"], what_changed(e)) for e in entries]
    print(table(("TIME", "ACTOR", "ACTION", "SYSTEM", "CHANGE"), rows))
    return 0


def what_changed(entry: dict[str, Any]) -> str:
    """The entry's change in one line; a purge says what it erased (a purge run again after
    the system is gone has nothing before or after it, and is no creation)."""
    removed = entry.get("removed")
    if isinstance(removed, dict):
        return _erased(removed, entry.get("before") is not None)
    return difference(entry.get("before"), entry.get("after"))


def _erased(removed: dict[str, Any], had_entry: bool) -> str:
    registry = "registry entry deleted" if had_entry else "registry entry already gone"
    text = (
        f"erased: {registry}, {removed.get('content_files_deleted', 0)} content file(s), "
        f"{removed.get('usage_records_total', 0)} usage record(s)"
    )
    skipped = removed.get("skipped") or []
    return text + (f"; {len(skipped)} file(s) left to a later run" if skipped else "")
