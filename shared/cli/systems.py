"""`tollgate systems ...` and `tollgate keys ...`: edit the systems registry."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.limits.config import LIMIT_FIELDS
from shared.registry import admin
from shared.registry.audit import AuditLog
from shared.registry.purge import purge_system
from shared.registry.store import RegistryStore, store_from_settings
from shared.registry.systems import ALL_MODELS, Registry, RegistryError
from shared.settings import Settings
from shared.usage.content import DEFAULT_CONTENT_RETENTION_DAYS

T = TypeVar("T")


def add_commands(commands: Any) -> None:
    systems = commands.add_parser("systems", help="create, list and edit calling systems")
    sys_cmds = systems.add_subparsers(dest="action", required=True)
    create = sys_cmds.add_parser("create", help="register a calling system")
    create.add_argument("system_id")
    create.add_argument("--name", default="")
    _models_option(create)
    create.set_defaults(handler=cmd_systems_create)
    sys_cmds.add_parser("list", help="list systems").set_defaults(handler=cmd_systems_list)
    show = sys_cmds.add_parser("show", help="show one system and its keys (never the keys)")
    show.add_argument("system_id")
    show.set_defaults(handler=cmd_systems_show)
    update = sys_cmds.add_parser("update", help="change a system")
    update.add_argument("system_id")
    update.add_argument("--name")
    _models_option(update)
    update.add_argument("--add-model", action="append", default=[])
    update.add_argument("--remove-model", action="append", default=[])
    update.add_argument("--allowed-networks", help="CIDRs this system may call from ('' : any)")
    update.add_argument("--entra-app-ids", help="Entra ID app (client) ids that act as it")
    update.add_argument("--entra-roles", help="Entra ID app roles that map to it")
    update.add_argument(
        "--redaction", choices=["mask", "reject", "off"], help="PII: mask, refuse, or let pass"
    )
    update.add_argument(
        "--content-logging", choices=["on", "off"], help="keep its prompts and completions"
    )
    update.add_argument("--content-retention-days", type=int, help="with --content-logging on")
    update.add_argument(
        "--redact-kinds", help="email,phone,tw_national_id,credit_card (default: all)"
    )
    state = update.add_mutually_exclusive_group()
    state.add_argument("--disable", action="store_const", const=True, dest="disabled")
    state.add_argument("--enable", action="store_const", const=False, dest="disabled")
    update.set_defaults(handler=cmd_systems_update)
    limits = sys_cmds.add_parser(
        "limits", help="set a system's limits (or one model's, or one key's); 'none' removes one"
    )
    limits.add_argument("system_id")
    target = limits.add_mutually_exclusive_group()
    target.add_argument("--model", help="limits for this model within the system")
    target.add_argument("--key", dest="key_id", help="limits for this key (by key id)")
    for name in LIMIT_FIELDS:
        limits.add_argument(f"--{name.replace('_', '-')}", dest=name, type=_limit_value)
    limits.add_argument("--clear", action="store_true", help="remove every limit first")
    limits.set_defaults(handler=cmd_systems_limits)
    purge = sys_cmds.add_parser(
        "purge", help="erase a system: its stored content, usage records and registry entry"
    )
    purge.add_argument("system_id")
    purge.add_argument("--yes", action="store_true", help="really erase (it cannot be undone)")
    purge.add_argument(
        "--include-current-hour",
        action="store_true",
        help="also rewrite this hour's usage files: only with every gateway instance stopped",
    )
    purge.set_defaults(handler=cmd_systems_purge)
    delete = sys_cmds.add_parser("delete", help="remove a system and all its keys")
    delete.add_argument("system_id")
    delete.set_defaults(handler=cmd_systems_delete)

    keys = commands.add_parser("keys", help="issue, list and revoke gateway keys")
    key_cmds = keys.add_subparsers(dest="action", required=True)
    kcreate = key_cmds.add_parser("create", help="issue a key; prints only the key")
    kcreate.add_argument("--system", required=True)
    kcreate.add_argument("--label", default="")
    kcreate.set_defaults(handler=cmd_keys_create)
    klist = key_cmds.add_parser("list", help="list key ids (never the keys)")
    klist.add_argument("--system")
    klist.set_defaults(handler=cmd_keys_list)
    revoke = key_cmds.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=cmd_keys_revoke)


def _models_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models", help=f"comma-separated public model names, or '{ALL_MODELS}' for all"
    )


def _split(models: str | None) -> list[str] | None:
    return None if models is None else [m.strip() for m in models.split(",") if m.strip()]


def _with_store(action: Callable[[RegistryStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = store_from_settings(Settings.from_env())
        try:
            return await action(store)
        finally:
            await store.aclose()

    return asyncio.run(run())


def _edit(change: Callable[[admin.Document], T], action: str) -> T:
    """Apply a change to the registry, and record it in the audit log."""

    async def run() -> T:
        settings = Settings.from_env()
        store, audit = store_from_settings(settings), AuditLog.from_settings(settings)
        try:
            return await admin.edit(store, change, audit, action)
        finally:
            await store.aclose()
            await audit.aclose()

    return asyncio.run(run())


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def cmd_systems_create(args: argparse.Namespace) -> int:
    change = admin.create_system(args.system_id, args.name, _split(args.models) or [])
    _edit(change, "systems create")
    return 0


def cmd_systems_update(args: argparse.Namespace) -> int:
    change = admin.update_system(
        args.system_id,
        name=args.name,
        models=_split(args.models),
        add_models=args.add_model,
        remove_models=args.remove_model,
        disabled=args.disabled,
        allowed_networks=_split(args.allowed_networks),
        entra_app_ids=_split(args.entra_app_ids),
        entra_roles=_split(args.entra_roles),
        redaction=_redaction(args),
        content_logging=_content_logging(args),
    )
    system = _edit(change, "systems update")
    _print_json(_public_system(args.system_id, system))
    return 0


_NONE = -1


def _limit_value(text: str) -> int:
    if text.lower() == "none":
        return _NONE
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("limits are whole numbers >= 0, or 'none'")
    return value


def cmd_systems_limits(args: argparse.Namespace) -> int:
    given = {n: getattr(args, n) for n in LIMIT_FIELDS if getattr(args, n) is not None}
    changes = {n: (None if v == _NONE else v) for n, v in given.items()}
    change = admin.set_limits(
        args.system_id, changes, model=args.model, key_id=args.key_id, clear=args.clear
    )
    _print_json(_edit(change, "systems limits"))
    return 0


def _redaction(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.redaction is None:
        return None
    if args.redaction == "off":
        return {}
    policy: dict[str, Any] = {"mode": args.redaction}
    if args.redact_kinds:
        policy["kinds"] = _split(args.redact_kinds)
    return policy


def _content_logging(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.content_logging is None:
        if args.content_retention_days is not None:
            raise RegistryError("--content-retention-days goes with --content-logging on")
        return None
    if args.content_logging == "off":
        return {}
    return {"retention_days": args.content_retention_days or DEFAULT_CONTENT_RETENTION_DAYS}


def cmd_systems_purge(args: argparse.Namespace) -> int:
    if not args.yes:
        raise RegistryError(
            f"purge erases system '{args.system_id}', its stored content and its usage records "
            "for good; add --yes"
        )
    report = asyncio.run(
        purge_system(
            Settings.from_env(), args.system_id, include_current_hour=args.include_current_hour
        )
    )
    _print_json(report.to_dict())
    return 0 if not report.skipped else 3


def cmd_systems_delete(args: argparse.Namespace) -> int:
    _edit(admin.delete_system(args.system_id), "systems delete")
    return 0


def cmd_systems_list(args: argparse.Namespace) -> int:
    document, _ = _with_store(admin.read_document)
    for system_id, spec in sorted(document["systems"].items()):
        state = "disabled" if spec.get("disabled") else "enabled"
        models = ",".join(spec.get("models", [])) or "(none)"
        print(f"{system_id}\t{state}\t{models}\t{spec.get('name', '')}")
    return 0


def cmd_systems_show(args: argparse.Namespace) -> int:
    document, _ = _with_store(admin.read_document)
    spec = admin.system_of(document, args.system_id)
    _print_json(_public_system(args.system_id, spec))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    new, change = admin.add_key(args.system, args.label)
    _edit(change, "keys create")
    print(new.key)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    document, _ = _with_store(admin.read_document)
    for record in Registry.parse(document).keys_of(args.system):
        state = f"revoked {record.revoked}" if record.revoked else "active"
        print(f"{record.key_id}\t{record.system_id}\t{state}\t{record.created}\t{record.label}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    _edit(admin.revoke_key(args.key_id), "keys revoke")
    return 0


def _public_system(system_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    public = {k: v for k, v in spec.items() if k != "keys"}
    public["id"] = system_id
    public["keys"] = {
        key_id: {k: v for k, v in record.items() if k != "hash"}
        for key_id, record in (spec.get("keys") or {}).items()
    }
    return public
