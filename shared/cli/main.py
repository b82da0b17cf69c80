"""`tollgate`: the one command-line entry point (registry admin, serving, the simulator)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shared.cli import audit, bench, report, serve, systems
from shared.cli.errors import CommandError
from shared.registry.systems import RegistryError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tollgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    systems.add_commands(commands)
    serve.add_commands(commands)
    bench.add_commands(commands)
    audit.add_commands(commands)
    report.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(report.with_kind(list(sys.argv[1:] if argv is None else argv)))
    try:
        result: int = args.handler(args)
    except (RegistryError, CommandError) as exc:
        print(f"tollgate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
