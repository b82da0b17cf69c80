"""`tollgate report latency`: latency percentiles, gateway overhead and a chart from probe/bench
CSVs; `tollgate report usage` (shared/cli/usage_report.py) is the other kind of report.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError

from shared.cli import usage_report as cli_usage_report
from shared.cli.dates import add_dates, date_range
from shared.cli.errors import CommandError
from shared.errors import ConfigError
from shared.probe.latency_csv import LatencyRow, read_csv
from shared.report.page import render_html
from shared.report.png_chart import render_png
from shared.report.render import Provenance, render_text
from shared.report.stats import Summary, summarise
from shared.settings import ProbeSettings, Settings
from shared.storage.documents import ResultsStore, results_store


@dataclass(frozen=True)
class Loaded:
    rows: list[LatencyRow]
    files: int
    where: str  # the sources, for messages


KINDS = ("latency", "usage")


def add_commands(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="latency: percentiles, overhead and a chart from probe/bench CSVs; "
        "usage: a bill per calling system from usage records",
        description="Reports on what the gateway wrote. `tollgate report SOURCE ...` (no kind) "
        "is `tollgate report latency SOURCE ...`; a folder named like a kind: ./usage",
    )
    kinds = report.add_subparsers(dest="report", required=True, metavar="{latency,usage}")
    latency = kinds.add_parser(
        "latency",
        help="latency percentiles, gateway overhead and a chart from probe/bench CSVs",
        description="Per model, path and stream mode: request count, error rate and p50/p90/p99 "
        "of total time, time to first byte and (streamed) time to first content token; the "
        "gateway's overhead over direct calls, with the rows it rests on and a warning when "
        "they are few or failing.",
    )
    latency.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="CSV files or folders of CSVs (searched recursively); "
        "default: the probe results location (TOLLGATE_PROBE_RESULTS)",
    )
    add_dates(latency)
    latency.add_argument(
        "--out", type=Path, metavar="DIR", help="also write report.png and report.html here"
    )
    for usage_only in ("--by", "--csv"):  # answered with a pointer to `report usage`
        latency.add_argument(usage_only, help=argparse.SUPPRESS)
    latency.set_defaults(handler=cmd_report)
    cli_usage_report.add_command(kinds)


def with_kind(argv: list[str]) -> list[str]:
    """`tollgate report [SOURCE ...]`, the first spelling, is `tollgate report latency ...`."""
    if argv[:1] == ["report"] and argv[1:2] not in ([kind] for kind in (*KINDS, "-h", "--help")):
        return ["report", "latency", *argv[1:]]
    return argv


def cmd_report(args: argparse.Namespace) -> int:
    if args.by is not None or args.csv is not None:
        raise CommandError("--by and --csv are options of `tollgate report usage`")
    since, until = date_range(args.since, args.until, bool(args.sources))
    if args.sources:
        loaded = load_files([Path(s) for s in args.sources], since, until)
    else:
        assert since is not None and until is not None  # date_range sets both without SOURCES
        loaded = asyncio.run(_load_probe_results(since, until))
    if not loaded.rows:
        where = f"{loaded.files} file(s) from {loaded.where}"
        print(f"tollgate report: no latency rows in {where}", file=sys.stderr)
        return 1
    summary = summarise(loaded.rows)
    first, last = summary.first, summary.last
    period = f"{since or (first and first.date())} to {until or (last and last.date())}"
    failed = sum(not row.ok for row in loaded.rows)
    provenance = Provenance(period, loaded.files, summary.rows, failed)
    print(render_text(summary, provenance))
    if args.out is not None:
        _write_out(args.out, summary, provenance)
    return 0


def _write_out(folder: Path, summary: Summary, provenance: Provenance) -> None:
    png = render_png(summary, provenance)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.png").write_bytes(png)
    (folder / "report.html").write_text(render_html(summary, provenance), encoding="utf-8")
    print(f"\nWrote {folder / 'report.png'} and {folder / 'report.html'}")


def load_files(sources: Sequence[Path], since: date | None, until: date | None) -> Loaded:
    """Rows of CSV files and folders of CSVs, keeping those that started within the dates."""
    files = list(_csv_files(sources))
    rows = [
        row
        for file in files
        for row in parse(str(file), _read(file))
        if (since is None or row.start.date() >= since)
        and (until is None or row.start.date() <= until)
    ]
    return Loaded(rows, len(files), ", ".join(str(s) for s in sources))


def _csv_files(sources: Sequence[Path]) -> Iterator[Path]:
    for source in sources:
        if source.is_file():
            yield source
        elif source.is_dir():
            yield from sorted(source.rglob("*.csv"))
        else:
            raise CommandError(f"{source}: no such file or folder")


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")  # -sig: a CSV saved by Excel starts with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{file}: cannot read it ({exc})") from None


async def load_store(store: ResultsStore, since: date, until: date) -> Loaded:
    """Rows of every run the store holds from since to until (by the day in the run's name)."""
    names = await store.names(since, until)
    rows: list[LatencyRow] = []
    for name in names:
        rows += parse(f"{store.describe()}/{name}", await store.get(name))
    return Loaded(rows, len(names), f"{store.describe()} ({since} to {until})")


async def _load_probe_results(since: date, until: date) -> Loaded:
    settings = Settings.from_env()
    location = ProbeSettings.from_env().results
    try:
        store = results_store(
            location, settings.storage_connection_string, settings.azure_client_id
        )
    except ConfigError as exc:
        raise CommandError(f"probe results location: {exc}") from None
    try:
        return await load_store(store, since, until)
    except (AzureError, OSError) as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CommandError(f"{store.describe()}: {first_line}") from None
    finally:
        await store.aclose()


def parse(name: str, text: str) -> list[LatencyRow]:
    try:
        return list(read_csv(text))
    except KeyError as exc:
        raise CommandError(f"{name}: not a latency CSV (no column {exc})") from None
    except ValueError as exc:
        raise CommandError(f"{name}: not a latency CSV ({exc})") from None
