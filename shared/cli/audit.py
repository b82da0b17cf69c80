"""`tollgate audit`: who changed which system, key or limit, when, from what to what."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.registry.audit import read_audit
from shared.settings import Settings


def add_commands(commands: Any) -> None:
    audit = commands.add_parser("audit", help="read the audit log of registry changes")
    audit.add_argument("--from", dest="since", type=date.fromisoformat)
    audit.add_argument("--to", dest="until", type=date.fromisoformat)
    audit.add_argument("--system", help="only changes to this system")
    audit.add_argument("--json", action="store_true", help="the entries, one JSON object a line")
    audit.set_defaults(handler=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    until = args.until or datetime.now(UTC).date()
    since = args.since or until - timedelta(days=30)
    entries = asyncio.run(read_audit(Settings.from_env(), since, until))
    if args.system:
        entries = [e for e in entries if e.get("target") == args.system]
    for entry in entries:
        if args.json:
            print(json.dumps(entry, ensure_ascii=False, sort_keys=True))
        else:
            print(
                f"{entry['time']}  {entry['actor']}  {entry['action']}  {entry['target']}  "
                f"{_difference(entry.get('before'), entry.get('after'))}"
            )
    return 0


def _difference(before: Any, after: Any) -> str:
    if before is None:
        return "created"
    if after is None:
        return "deleted"
    changed = []
    for field in sorted(set(before) | set(after)):
        if before.get(field) != after.get(field):
            changed.append(f"{field}: {_short(before.get(field))} -> {_short(after.get(field))}")
    return "; ".join(changed)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
