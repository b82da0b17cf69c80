"""`--from` and `--to`, as both reports take them, and the range they default to."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta

from shared.cli.errors import CommandError

DEFAULT_DAYS = 7


def add_dates(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="since",
        type=day,
        metavar="YYYY-MM-DD",
        help="first day (UTC); default: 6 days before --to, or no limit with SOURCES",
    )
    parser.add_argument(
        "--to",
        dest="until",
        type=day,
        metavar="YYYY-MM-DD",
        help="last day (UTC); default: today, or no limit with SOURCES",
    )


def date_range(
    since: date | None, until: date | None, sources: bool
) -> tuple[date | None, date | None]:
    """The last 7 days up to --to (or today); with SOURCES, no limit but the ones given."""
    if not sources:
        until = until or datetime.now(UTC).date()
        since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since and until and since > until:
        raise CommandError(f"--from {since} is after --to {until}")
    return since, until


def day(text: str) -> date:
    """An argparse type: YYYY-MM-DD, or a message saying that is what it takes."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None
