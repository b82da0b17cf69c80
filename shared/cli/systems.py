"""`tollgate systems ...`: create, list, show, change, delete and purge calling systems (their
limits, live usage and spend: limits.py, live_usage.py and spend.py). Each change prints one
line saying what it did; list and show print tables, or JSON with --json."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from shared.cli import limits, live_usage, registry_io, spend
from shared.cli.confirm import confirmed
from shared.cli.differences import difference
from shared.cli.errors import CommandError
from shared.cli.model_names import warn_of_unknown
from shared.cli.output import json_option, note, print_json, warn
from shared.cli.system_views import list_json, list_table, models_text, show_json, show_text
from shared.cli.where import cli_settings
from shared.registry import admin
from shared.registry.systems import ALL_MODELS, RegistryError, systems_of
from shared.usage.content import DEFAULT_CONTENT_RETENTION_DAYS


def add_commands(commands: Any) -> None:
    systems = commands.add_parser("systems", help="create, list and edit calling systems")
    sys_cmds = systems.add_subparsers(dest="action", required=True)
    _create_command(sys_cmds)
    listed = sys_cmds.add_parser("list", help="list systems (never their keys)")
    json_option(listed, "the list")
    listed.set_defaults(handler=cmd_systems_list)
    show = sys_cmds.add_parser("show", help="one system: settings, limits, key ids (never keys)")
    show.add_argument("system_id", metavar="ID", help="the system")
    json_option(show, "the system")
    show.set_defaults(handler=cmd_systems_show)
    _update_command(sys_cmds)
    limits.add_command(sys_cmds)
    live_usage.add_command(sys_cmds)
    spend.add_command(sys_cmds)
    delete = sys_cmds.add_parser("delete", help="remove a system and all its keys (asks first)")
    delete.add_argument("system_id", metavar="ID", help="the system")
    delete.add_argument("--yes", action="store_true", help="do not ask (for scripts)")
    delete.set_defaults(handler=cmd_systems_delete)
    purge = sys_cmds.add_parser(
        "purge", help="erase a system: its stored content, usage records and registry entry"
    )
    purge.add_argument("system_id", metavar="ID", help="the system")
    purge.add_argument("--yes", action="store_true", help="really erase (it cannot be undone)")
    purge.add_argument(
        "--include-current-hour",
        action="store_true",
        help="also rewrite this hour's usage files: only with every gateway instance stopped",
    )
    purge.set_defaults(handler=cmd_systems_purge)


def _create_command(sys_cmds: Any) -> None:
    create = sys_cmds.add_parser("create", help="register a calling system")
    create.add_argument("system_id", metavar="ID", help="1-64 letters, digits, '.', '_', '-'")
    create.add_argument("--name", default="", help="a name for people (default: none)")
    models = create.add_mutually_exclusive_group()
    _models_option(models, "the models it may call (required, or --no-models)")
    models.add_argument(
        "--no-models",
        action="store_true",
        help="create it allowed no model (it can call nothing until models are added)",
    )
    create.set_defaults(handler=cmd_systems_create)


def _update_command(sys_cmds: Any) -> None:
    update = sys_cmds.add_parser("update", help="change a system")
    update.add_argument("system_id", metavar="ID", help="the system")
    update.add_argument("--name", help="a new name for people")
    _models_option(update, "replace its models")
    update.add_argument(
        "--add-model", action="append", default=[], metavar="MODEL", help="allow one more model"
    )
    update.add_argument(
        "--remove-model", action="append", default=[], metavar="MODEL", help="take one away"
    )
    update.add_argument("--allowed-networks", help="CIDRs this system may call from ('': any)")
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
    _cache_options(update)
    update.add_argument(
        "--content-policy",
        metavar="FILE|JSON|off",
        help="check prompts and answers: a policy (a JSON file or text), or off",
    )
    state = update.add_mutually_exclusive_group()
    state.add_argument(
        "--disable",
        action="store_const",
        const=True,
        dest="disabled",
        help="refuse its requests (keys kept)",
    )
    state.add_argument(
        "--enable", action="store_const", const=False, dest="disabled", help="accept them again"
    )
    json_option(update, "the system after the change")
    update.set_defaults(handler=cmd_systems_update)


def _cache_options(update: Any) -> None:
    update.add_argument(
        "--cache", choices=["on", "off"], help="replay answers to repeated requests (default off)"
    )
    update.add_argument(
        "--cache-ttl", type=int, metavar="SECONDS", help="how long an answer is kept (3600)"
    )
    update.add_argument(
        "--cache-scope",
        metavar="NAME",
        help="share kept answers with the systems naming the same scope ('': its own)",
    )
    update.add_argument(
        "--cache-models", metavar="MODELS", help="only these models' answers ('': every model)"
    )


def _models_option(parser: Any, what: str) -> None:
    parser.add_argument(
        "--models",
        help=f"{what}: comma-separated public model names, or '{ALL_MODELS}' for every model",
    )


def split(values: str | None) -> list[str] | None:
    return None if values is None else [v.strip() for v in values.split(",") if v.strip()]


def cmd_systems_create(args: argparse.Namespace) -> int:
    if args.models is None and not args.no_models:
        raise CommandError(
            f"name the models system '{args.system_id}' may call: --models gpt-4o,gpt-4-turbo "
            f"(or --models '{ALL_MODELS}' for every model); a system without models can call "
            "nothing, so that takes --no-models"
        )
    models = split(args.models) or []
    warn_of_unknown(models, cli_settings())
    registry_io.edit(admin.create_system(args.system_id, args.name, models))
    name = f", name '{args.name}'" if args.name else ""
    print(f"created system '{args.system_id}' (models: {models_text(models)}{name})")
    if not models:
        note(
            f"it can call no model until you add some: tollgate systems update {args.system_id} "
            "--add-model MODEL"
        )
    return 0


def cmd_systems_update(args: argparse.Namespace) -> int:
    change = admin.update_system(
        args.system_id,
        name=args.name,
        models=split(args.models),
        add_models=args.add_model,
        remove_models=args.remove_model,
        disabled=args.disabled,
        allowed_networks=split(args.allowed_networks),
        entra_app_ids=split(args.entra_app_ids),
        entra_roles=split(args.entra_roles),
        redaction=_redaction(args),
        content_logging=_content_logging(args),
        cache={"on": True, "off": False, None: None}[args.cache],
        cache_settings=_cache_settings(args),
        content_policy=_content_policy(args.content_policy),
    )
    warn_of_unknown([*(split(args.models) or []), *args.add_model], cli_settings())
    _warn_without_content_safety(args.content_policy)
    before, after, _ = registry_io.edit_system(args.system_id, change)
    assert after is not None
    if args.json:
        print_json(show_json(args.system_id, after))
    elif before == after:
        print(f"system '{args.system_id}' unchanged")
    else:
        print(f"updated system '{args.system_id}': {difference(before, after)}")
    return 0


def _redaction(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.redaction is None:
        return None
    if args.redaction == "off":
        return {}
    policy: dict[str, Any] = {"mode": args.redaction}
    if args.redact_kinds:
        policy["kinds"] = split(args.redact_kinds)
    return policy


def _content_logging(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.content_logging is None:
        if args.content_retention_days is not None:
            raise RegistryError("--content-retention-days goes with --content-logging on")
        return None
    if args.content_logging == "off":
        return {}
    return {"retention_days": args.content_retention_days or DEFAULT_CONTENT_RETENTION_DAYS}


def _content_policy(value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if value == "off":
        return {}
    text = value if value.lstrip().startswith("{") else _read_policy_file(value)
    try:
        policy = json.loads(text)
    except ValueError as exc:
        raise RegistryError(f"--content-policy: not JSON ({exc})") from None
    if not isinstance(policy, dict) or not policy:
        raise RegistryError("--content-policy: a JSON object, or off")
    return policy


def _warn_without_content_safety(value: str | None) -> None:
    policy = _content_policy(value) or {}
    needs = bool(policy.get("prompt") or policy.get("answer") or policy.get("prompt_shields"))
    if needs and not cli_settings().content_safety_endpoint:
        warn(
            "its harm categories and Prompt Shields need Azure AI Content Safety: set "
            "TOLLGATE_CONTENT_SAFETY_ENDPOINT for the gateways, or those checks follow the "
            "policy's outage rule (open: admitted unchecked and logged; closed: refused)"
        )


def _read_policy_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"--content-policy: cannot read {path}: {exc.strerror}") from None


def _cache_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    if args.cache_ttl is not None:
        settings["ttl_seconds"] = args.cache_ttl
    if args.cache_scope is not None:
        settings["scope"] = args.cache_scope or None
    if args.cache_models is not None:
        settings["models"] = split(args.cache_models) or None
    return settings


def cmd_systems_delete(args: argparse.Namespace) -> int:
    spec = admin.system_of(registry_io.read(), args.system_id)
    what = f"system '{args.system_id}' and its {_keys(spec)}"
    question = f"Delete {what}? Its callers are refused from then on (within 30 s)."
    if not confirmed(question, f"delete would remove {what}", args.yes):
        print(f"system '{args.system_id}' not deleted")
        return 1
    _, _, deleted = registry_io.edit_system(args.system_id, admin.delete_system(args.system_id))
    print(f"deleted system '{args.system_id}' and its {_keys(deleted)}")
    return 0


def _keys(spec: dict[str, Any]) -> str:
    count = len(spec.get("keys") or {})
    return "1 key" if count == 1 else f"{count} keys"


def cmd_systems_purge(args: argparse.Namespace) -> int:
    from shared.registry.purge import purge_system

    refusal = (
        f"purge erases system '{args.system_id}', its stored content and its usage records for good"
    )
    if not confirmed(f"Erase system '{args.system_id}' for good?", refusal, args.yes):
        print(f"system '{args.system_id}' not purged")
        return 1
    settings = cli_settings()
    registry_io.announce(settings)
    report = asyncio.run(
        purge_system(settings, args.system_id, include_current_hour=args.include_current_hour)
    )
    print_json(report.to_dict())
    return 0 if not report.skipped else 3


def cmd_systems_list(args: argparse.Namespace) -> int:
    systems = systems_of(registry_io.read())
    if args.json:
        print_json(list_json(systems))
        return 0
    print(list_table(systems))
    return 0


def cmd_systems_show(args: argparse.Namespace) -> int:
    spec = admin.system_of(registry_io.read(), args.system_id)
    if args.json:
        print_json(show_json(args.system_id, spec))
    else:
        print(show_text(args.system_id, spec))
    return 0
