"""`tollgate systems limits ID`: every limit that applies to a system (no flags), or a change
to its own limits, one model's (--model) or one key's (--key).

`--clear` removes the limits of the one target named (the system's own, or --model's, or
--key's) and nothing else; `--clear-models`, `--clear-keys` and `--clear-all` remove every
model's, every key's, or all of them. Each change says what it set, what it cleared, and what
is still in force.
"""

from __future__ import annotations

import argparse
from typing import Any

from shared.cli import registry_io
from shared.cli.limits_view import describe_edit, limits_json, limits_table
from shared.cli.output import json_option, note, print_json
from shared.limits.config import LIMIT_FIELDS, MONEY_FIELDS
from shared.registry import admin

NONE = -1  # `--rpm none`: remove that limit
MEANING = {
    "rpm": "requests in any 60 s window",
    "tpm": "tokens in any 60 s window",
    "concurrency": "requests in flight at once",
    "tokens_per_day": "tokens a calendar day (in TOLLGATE_QUOTA_TIMEZONE)",
    "tokens_per_month": "tokens a calendar month (in TOLLGATE_QUOTA_TIMEZONE)",
    "budget_per_day": "money a calendar day, in the price table's currency (e.g. 20 or 12.5)",
    "budget_per_month": "money a calendar month, in the price table's currency",
}


def add_command(sys_cmds: Any) -> None:
    limits = sys_cmds.add_parser(
        "limits",
        help="show every limit of a system (no flags), or set its own, a model's or a key's",
        description="Without flags: every limit that applies to the system's requests (its "
        "own, per model, per key). With flags: set them ('none' removes one) or clear them.",
    )
    limits.add_argument("system_id", metavar="ID", help="the system")
    target = limits.add_mutually_exclusive_group()
    target.add_argument("--model", help="set or clear the limits of this model within the system")
    target.add_argument(
        "--key", dest="key_id", metavar="KEY_ID", help="set or clear the limits of this key"
    )
    for name in LIMIT_FIELDS:
        money = name in MONEY_FIELDS
        limits.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=_money_value if money else _limit_value,
            metavar="AMOUNT" if money else "N",
            help=f"{MEANING[name]}; 'none' removes it",
        )
    limits.add_argument(
        "--clear",
        action="store_true",
        help="first remove the target's limits: the system's own (not its models' or keys'), "
        "or --model's, or --key's",
    )
    limits.add_argument(
        "--clear-models", action="store_true", help="remove the limits of every model"
    )
    limits.add_argument("--clear-keys", action="store_true", help="remove the limits of every key")
    limits.add_argument(
        "--clear-all",
        action="store_true",
        help="remove every limit: the system's own, every model's and every key's",
    )
    json_option(limits, "every limit (after the change)")
    limits.set_defaults(handler=cmd_limits)


def _limit_value(text: str) -> int:
    value = _amount(text, "limits are whole numbers >= 0, or 'none'")
    if not float(value).is_integer():
        raise argparse.ArgumentTypeError("limits are whole numbers >= 0, or 'none'")
    return int(value)


def _money_value(text: str) -> float:
    value = _amount(text, "budgets are amounts >= 0, or 'none'")
    return int(value) if float(value).is_integer() else value


def _amount(text: str, rule: str) -> float:
    """A number >= 0, or NONE for 'none' (the limit removed)."""
    if text.lower() == "none":
        return NONE
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(rule) from None
    if not 0 <= value < float("inf"):  # NaN fails too
        raise argparse.ArgumentTypeError(rule)
    return value


def cmd_limits(args: argparse.Namespace) -> int:
    given = {n: getattr(args, n) for n in LIMIT_FIELDS if getattr(args, n) is not None}
    clears = (args.clear, args.clear_models, args.clear_keys, args.clear_all)
    if not given and not any(clears):
        return _show(args)
    change = admin.set_limits(
        args.system_id,
        {n: (None if v == NONE else v) for n, v in given.items()},
        model=args.model,
        key_id=args.key_id,
        clear=args.clear or args.clear_all,
        clear_models=args.clear_models or args.clear_all,
        clear_keys=args.clear_keys or args.clear_all,
    )
    before, after, _ = registry_io.edit_system(args.system_id, change)
    if args.json:
        print_json(limits_json(args.system_id, after or {}))
    else:
        print(describe_edit(args.system_id, before, after))
    return 0


def _show(args: argparse.Namespace) -> int:
    spec = admin.system_of(registry_io.read(), args.system_id)
    if args.json:
        print_json(limits_json(args.system_id, spec))
        return 0
    shown = limits_table(args.system_id, spec)
    if not shown:
        print(f"system '{args.system_id}' has no limits")
        return 0
    print(shown)
    note("a request must pass every row that applies to it: the system's, its model's, its key's")
    return 0
