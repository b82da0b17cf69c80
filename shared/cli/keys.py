"""`tollgate keys ...`: issue, list and revoke gateway keys. `keys create` prints the new key
alone on stdout (scripts capture it) and says the rest on stderr."""

from __future__ import annotations

import argparse
from typing import Any

from shared.cli import registry_io
from shared.cli.output import json_option, note, print_json
from shared.cli.system_views import key_json, keys_table
from shared.registry import admin
from shared.registry.systems import systems_of


def add_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="issue, list and revoke gateway keys")
    key_cmds = keys.add_subparsers(dest="action", required=True)
    create = key_cmds.add_parser("create", help="issue a key; prints only the key")
    create.add_argument("--system", required=True, metavar="ID", help="the system it calls as")
    create.add_argument("--label", default="", help="what it is for, e.g. the application")
    create.set_defaults(handler=cmd_keys_create)
    listed = key_cmds.add_parser("list", help="list key ids (never the keys)")
    listed.add_argument("--system", metavar="ID", help="only this system's keys")
    json_option(listed, "the list")
    listed.set_defaults(handler=cmd_keys_list)
    revoke = key_cmds.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="KEY_ID", help="as `keys list` shows it")
    revoke.set_defaults(handler=cmd_keys_revoke)


def cmd_keys_create(args: argparse.Namespace) -> int:
    new, change = admin.add_key(args.system, args.label)
    registry_io.edit(change)
    label = f" (label '{args.label}')" if args.label else ""
    note(f"issued key {new.key_id} for system '{args.system}'{label}; it is shown only now")
    print(new.key)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    systems = systems_of(registry_io.read())
    if args.system is not None:
        admin.system_of({"systems": systems}, args.system)  # "no system 'x'" rather than nothing
    found = [
        key_json(key_id, system_id, record)
        for system_id, spec in sorted(systems.items())
        if args.system in (None, system_id)
        for key_id, record in sorted((spec.get("keys") or {}).items())
    ]
    if args.json:
        print_json(found)
    else:
        print(keys_table(found))
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    revoked = registry_io.edit(admin.revoke_key(args.key_id))
    whose = f"key {args.key_id} of system '{revoked.system_id}'"
    if revoked.already:
        print(f"{whose} was already revoked ({revoked.revoked})")
    else:
        print(f"revoked {whose}")
    return 0
