"""Asking before a command destroys something: `--yes` for scripts, a question on a terminal,
and a refusal anywhere else."""

from __future__ import annotations

import sys

from shared.cli.errors import CommandError


def confirmed(question: str, refusal: str, yes: bool) -> bool:
    """True when --yes was given or the operator answers yes on the terminal; False when they
    answer anything else. Without a terminal to ask on, raises a CommandError (`refusal`)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CommandError(f"{refusal}; add --yes to go ahead (there is no terminal to ask on)")
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")
