"""`tollgate systems spend [ID]`: what each system (or one) has spent today and this month
against each of its budgets, from the live counters the gateways keep in Redis, as a table or
JSON. Money is in the price table's currency."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from shared.cli import registry_io
from shared.cli.live_usage import budgeted, counted_scopes, read_live, redis_or_note
from shared.cli.output import json_option, note, print_json, table
from shared.limits.plan import COST_UNITS
from shared.registry import admin


def add_command(sys_cmds: Any) -> None:
    spend = sys_cmds.add_parser(
        "spend",
        help="money spent today and this month against each budget (needs TOLLGATE_REDIS_URL)",
        description="What the gateways have charged against each budget of every system (or "
        "of one), read from the Redis they share, in the price table's currency.",
    )
    spend.add_argument("system_id", metavar="ID", nargs="?", help="one system (default: all)")
    json_option(spend, "the budgets and what was spent")
    spend.set_defaults(handler=cmd_spend)


def cmd_spend(args: argparse.Namespace) -> int:
    document = registry_io.read()
    ids = [args.system_id] if args.system_id else sorted(document.get("systems", {}))
    found = {
        system_id: scopes
        for system_id in ids
        if (scopes := budgeted(counted_scopes(admin.system_of(document, system_id))))
    }
    if not found:
        whose = f"system '{args.system_id}' has" if args.system_id else "no system has"
        print(f"{whose} no budget" if args.system_id else f"{whose} a budget")
        return 0
    settings = redis_or_note()
    if settings is None:
        return 1
    rows: list[dict[str, Any]] = []
    for system_id, scopes in found.items():
        _, counters = asyncio.run(read_live(settings, system_id, scopes))
        rows += [
            {
                "system": system_id,
                "scope": counter.scope,
                "period": counter.check.label,
                "spent": counter.used / COST_UNITS,
                "budget": counter.check.limit / COST_UNITS,
                "left": max(counter.check.limit - counter.used, 0) / COST_UNITS,
            }
            for counter in counters
            if counter.check.kind == "budget"
        ]
    if args.json:
        print_json({"budgets": rows})
        return 0
    note("money in the price table's currency; periods in TOLLGATE_QUOTA_TIMEZONE")
    headers = ("SYSTEM", "SCOPE", "PERIOD", "SPENT", "BUDGET", "LEFT")
    print(
        table(
            headers,
            [
                (
                    r["system"],
                    r["scope"],
                    r["period"],
                    _money(r["spent"]),
                    _money(r["budget"]),
                    _money(r["left"]),
                )
                for r in rows
            ],
        )
    )
    return 0


def _money(amount: float) -> str:
    return f"{amount:,.4f}"
