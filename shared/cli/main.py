"""`tollgate`: the one command-line entry point (registry admin, serving, the simulator).

A command's module is imported only when that command runs (all of them only for help and
mistakes), so that the registry commands start without loading the gateway, aiohttp or the
Azure SDKs that serving, benchmarks and reports need.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from shared.cli.errors import CommandError

DESCRIPTION = "Tollgate: registry admin (systems, keys, audit), serving, benchmarks and reports."
COMMANDS = {  # command -> the module that adds it (and its siblings)
    "systems": "shared.cli.systems",
    "keys": "shared.cli.keys",
    "serve": "shared.cli.serve",
    "run": "shared.cli.serve",
    "simulator": "shared.cli.serve",
    "bench": "shared.cli.bench",
    "audit": "shared.cli.audit",
    "blocklists": "shared.cli.blocklists",
    "report": "shared.cli.report",
}


class _Version(argparse.Action):
    """`--version`: the installed package's version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("tollgate")
        except PackageNotFoundError:
            found = "(not installed: run `make install`)"
        print(f"tollgate {found}")
        parser.exit()


def build_parser(modules: Sequence[str] = tuple(COMMANDS.values())) -> argparse.ArgumentParser:
    """The parser, with the commands of these modules (by default all)."""
    parser = argparse.ArgumentParser(prog="tollgate", description=DESCRIPTION)
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    for module in dict.fromkeys(modules):
        importlib.import_module(module).add_commands(commands)
    return parser


def _needed(words: list[str]) -> Sequence[str]:
    """The modules a command line needs: its command's (all for help or a mistake)."""
    if words and words[0] in COMMANDS:
        return [COMMANDS[words[0]]]
    if words == ["--version"]:
        return []
    return tuple(COMMANDS.values())


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["report"]:
        from shared.cli.report import with_kind

        words = with_kind(words)
    args = build_parser(_needed(words)).parse_args(words)
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except _reported() as exc:  # evaluated only when something was raised
        print(f"tollgate: {exc}", file=sys.stderr)
        return 2
    return result


def _reported() -> tuple[type[Exception], ...]:
    """What a command reports as one line (a usage or configuration problem), not a trace."""
    from shared.errors import ConfigError  # RegistryError is one

    return CommandError, ConfigError


if __name__ == "__main__":
    sys.exit(main())
