"""`tollgate report usage`: a bill per calling system from the gateway's usage records, its
costs in the currency of the operator's price table (`--currency`, USD unless told)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError

from shared.cli.dates import add_dates, date_range
from shared.cli.errors import CommandError
from shared.errors import ConfigError
from shared.report.usage import (
    DEFAULT_BY,
    DEFAULT_CURRENCY,
    DIMENSIONS,
    Tally,
    bill,
    parse_by,
    read_usage,
    render_table,
    write_csv,
)
from shared.report.usage_files import LocalFiles, RecordFiles, location_files
from shared.settings import Settings


def usage_records_location() -> str:
    return Settings.from_env().usage_records


def add_command(kinds: Any) -> None:
    """`tollgate report usage`, beside `tollgate report latency`."""
    usage = kinds.add_parser(
        "usage",
        help="a bill per calling system from usage records",
        description="Requests, errors, tokens, cost and p50/p95 total time per group, from "
        "usage records.",
    )
    usage.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="*.jsonl files or folders of them; default: the usage records location "
        "(TOLLGATE_USAGE_RECORDS)",
    )
    add_dates(usage)
    usage.add_argument(
        "--by",
        type=_by,
        metavar="DIMS",
        help=f"group by these, comma-separated: {','.join(DIMENSIONS)}; "
        f"default: {','.join(DEFAULT_BY)}",
    )
    usage.add_argument(
        "--csv", type=Path, metavar="FILE", help="also write the rows to FILE as CSV"
    )
    usage.add_argument(
        "--currency",
        type=_currency,
        default=DEFAULT_CURRENCY,
        metavar="CODE",
        help='the currency of the price table (each model\'s "price" in the gateway '
        f"configuration), shown with every cost; default: {DEFAULT_CURRENCY}",
    )
    usage.add_argument("--out", help=argparse.SUPPRESS)  # answered: use --csv
    usage.set_defaults(handler=cmd_usage)


def _by(text: str) -> tuple[str, ...]:
    try:
        return parse_by(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _currency(text: str) -> str:
    """An ISO 4217 code (USD, EUR, JPY) or one currency sign ($, €, ¥)."""
    code = text.strip()
    if len(code) == 3 and code.isascii() and code.isalpha():
        return code.upper()
    if len(code) == 1 and unicodedata.category(code) == "Sc":
        return code
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a currency: give a code such as USD, EUR or JPY, or a sign such as $"
    )


def cmd_usage(args: argparse.Namespace) -> int:
    if args.out is not None:
        raise CommandError("--out is for latency reports; use --csv FILE for usage")
    sources = [Path(source) for source in args.sources]
    since, until = date_range(args.since, args.until, bool(sources))
    tally = Tally(args.by or DEFAULT_BY, since, until)
    where = asyncio.run(_read(tally, sources))
    _report_problems(tally)
    if not tally.records:
        dates = _dates_text(since, until)
        print(
            f"tollgate report usage: no usage records{dates} in {tally.files} file(s) from {where}",
            file=sys.stderr,
        )
        return 1
    rows = bill(tally)
    print(render_table(tally, rows, where, args.currency))
    if args.csv is not None:
        try:
            with args.csv.open("w", encoding="utf-8", newline="") as out:
                write_csv(out, tally.by, rows, args.currency)
        except OSError as exc:
            raise CommandError(f"{args.csv}: cannot write it ({exc.strerror or exc})") from None
        print(f"\nWrote {args.csv}")
    return 0


def _dates_text(since: date | None, until: date | None) -> str:
    if since and until:
        return f" from {since} to {until}"
    return f" from {since}" if since else f" up to {until}" if until else ""


async def _read(tally: Tally, sources: list[Path]) -> str:
    """Reads the records into tally; returns where they came from."""
    files = _sources(sources) if sources else _location(tally)
    try:
        await read_usage(files, tally)
    except (AzureError, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CommandError(f"{files.describe()}: {first_line}") from None
    finally:
        await files.aclose()
    return files.describe()


def _sources(sources: list[Path]) -> RecordFiles:
    return LocalFiles(sources, ", ".join(str(source) for source in sources))


def _location(tally: Tally) -> RecordFiles:
    assert tally.since is not None and tally.until is not None  # set by _dates without SOURCES
    settings = Settings.from_env()
    try:
        return location_files(
            usage_records_location(),
            settings.storage_connection_string,
            settings.azure_client_id,
            tally.since,
            tally.until,
        )
    except ConfigError as exc:
        raise CommandError(f"usage records location: {exc}") from None


def _report_problems(tally: Tally) -> None:
    if tally.malformed:
        lines = "line" if tally.malformed == 1 else "lines"
        print(
            f"skipped {tally.malformed} malformed {lines} (the first: {tally.first_malformed})",
            file=sys.stderr,
        )
    if tally.unfinished:
        lines = "line" if tally.unfinished == 1 else "lines"
        print(
            f"skipped {tally.unfinished} unfinished last {lines} (a file being written, "
            "or cut short)",
            file=sys.stderr,
        )
