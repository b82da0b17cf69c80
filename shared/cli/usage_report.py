"""`tollgate report usage`: a bill per calling system from the gateway's usage records.

`tollgate report` parses the arguments (its first SOURCE is then the word `usage`) and hands
them over here; the options below are added to its parser.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from azure.core.exceptions import AzureError

from shared.cli.errors import CommandError
from shared.report.usage import (
    DEFAULT_BY,
    DIMENSIONS,
    LocalFiles,
    RecordFiles,
    Tally,
    bill,
    location_files,
    parse_by,
    read_usage,
    render_table,
    write_csv,
)
from shared.settings import Settings

USAGE = "usage"  # the first SOURCE that asks for a usage report
DEFAULT_DAYS = 7


def usage_records_location() -> str:
    return Settings.from_env().usage_records


def add_options(report: argparse.ArgumentParser) -> None:
    """The options of `tollgate report usage`, on the `tollgate report` parser."""
    group = report.add_argument_group(
        "usage reports",
        "tollgate report usage [SOURCE ...] [--from] [--to] [--by DIMS] [--csv FILE]: requests, "
        "errors, tokens, cost and p50/p95 total time per group, from usage records (*.jsonl "
        "files and folders; default: the usage records location, TOLLGATE_USAGE_RECORDS). "
        "A folder named usage: ./usage",
    )
    group.add_argument(
        "--by",
        type=_by,
        metavar="DIMS",
        help=f"group by these, comma-separated: {','.join(DIMENSIONS)}; "
        f"default: {','.join(DEFAULT_BY)}",
    )
    group.add_argument(
        "--csv", type=Path, metavar="FILE", help="also write the rows to FILE as CSV"
    )


def _by(text: str) -> tuple[str, ...]:
    try:
        return parse_by(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def usage_requested(args: argparse.Namespace) -> bool:
    """True for `tollgate report usage ...`; CommandError for its options without `usage`."""
    if args.sources[:1] == [USAGE]:
        return True
    if args.by is not None or args.csv is not None:
        raise CommandError("--by and --csv are options of `tollgate report usage`")
    return False


def cmd_usage(args: argparse.Namespace) -> int:
    if args.out is not None:
        raise CommandError("--out is for latency reports; use --csv FILE for usage")
    sources = [Path(source) for source in args.sources[1:]]
    since, until = _dates(args.since, args.until, bool(sources))
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
    print(render_table(tally, rows, where))
    if args.csv is not None:
        try:
            with args.csv.open("w", encoding="utf-8", newline="") as out:
                write_csv(out, tally.by, rows)
        except OSError as exc:
            raise CommandError(f"{args.csv}: cannot write it ({exc.strerror or exc})") from None
        print(f"\nWrote {args.csv}")
    return 0


def _dates(
    since: date | None, until: date | None, sources: bool
) -> tuple[date | None, date | None]:
    """As `tollgate report`: the last 7 days up to --to (or today); with SOURCES, no limit."""
    if not sources:
        until = until or datetime.now(UTC).date()
        since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since and until and since > until:
        raise CommandError(f"--from {since} is after --to {until}")
    return since, until


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
    except ValueError as exc:
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
