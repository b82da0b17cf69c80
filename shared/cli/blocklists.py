"""`tollgate blocklists ...`: named lists of terms that content policies block, kept in the
registry (matched by every gateway, with no service) and synchronised to Azure AI Content
Safety when it is configured (where Azure OpenAI's own content filters can use them too)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from shared.cli import registry_io
from shared.cli.confirm import confirmed
from shared.cli.errors import CommandError
from shared.cli.output import json_option, note, print_json, table
from shared.cli.where import cli_settings
from shared.registry import admin


def add_commands(commands: Any) -> None:
    lists = commands.add_parser("blocklists", help="terms that content policies block")
    verbs = lists.add_subparsers(dest="verb", required=True)
    listed = verbs.add_parser("list", help="every blocklist and how many terms it has")
    json_option(listed)
    listed.set_defaults(handler=cmd_list)
    show = verbs.add_parser("show", help="one blocklist's terms")
    show.add_argument("name")
    json_option(show)
    show.set_defaults(handler=cmd_show)
    for verb, what in (("add", "add terms (creating the list)"), ("remove", "remove terms")):
        parser = verbs.add_parser(verb, help=what)
        parser.add_argument("name")
        parser.add_argument("terms", nargs="+", metavar="TERM")
        parser.set_defaults(handler=cmd_add if verb == "add" else cmd_remove)
    delete = verbs.add_parser("delete", help="delete a blocklist no system uses")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    delete.set_defaults(handler=cmd_delete)
    sync = verbs.add_parser("sync", help="make Azure AI Content Safety's copies the same")
    sync.add_argument("names", nargs="*", metavar="NAME", help="default: every blocklist")
    sync.set_defaults(handler=cmd_sync)


def _lists() -> dict[str, Any]:
    return dict(registry_io.read().get("blocklists") or {})


def cmd_list(args: argparse.Namespace) -> int:
    lists = _lists()
    if args.json:
        print_json({name: len(spec["terms"]) for name, spec in sorted(lists.items())})
        return 0
    rows = [(name, len(spec["terms"])) for name, spec in sorted(lists.items())]
    print(table(("NAME", "TERMS"), rows) if rows else "no blocklists")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    spec = _lists().get(args.name)
    if spec is None:
        raise CommandError(f"no blocklist '{args.name}'")
    if args.json:
        print_json(spec["terms"])
        return 0
    print("\n".join(spec["terms"]) or "(no terms)")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    terms = registry_io.edit(admin.set_blocklist(args.name, add=args.terms))
    print(f"blocklist '{args.name}': {len(terms)} terms")
    note("gateways use it within their registry refresh; `tollgate blocklists sync` copies it")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    if args.name not in _lists():
        raise CommandError(f"no blocklist '{args.name}'")
    terms = registry_io.edit(admin.set_blocklist(args.name, remove=args.terms))
    print(f"blocklist '{args.name}': {len(terms)} terms")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    question = f"Delete blocklist '{args.name}'?"
    if not confirmed(question, f"delete would remove blocklist '{args.name}'", args.yes):
        return 1
    registry_io.edit(admin.delete_blocklist(args.name))
    print(f"deleted blocklist '{args.name}'")
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from shared.guardrails.blocklist_sync import sync_blocklists

    lists = _lists()
    unknown = [name for name in args.names if name not in lists]
    if unknown:
        raise CommandError(f"no blocklists {unknown}")
    chosen = {n: tuple(s["terms"]) for n, s in lists.items() if not args.names or n in args.names}
    settings = cli_settings()
    if not settings.content_safety_endpoint:
        raise CommandError("TOLLGATE_CONTENT_SAFETY_ENDPOINT is not set: nothing to sync to")
    for name, (added, removed) in asyncio.run(sync_blocklists(settings, chosen)).items():
        print(f"blocklist '{name}': {added} added, {removed} removed in Content Safety")
    return 0
