"""The command's own help: every flag of the registry commands explains itself, and each
report kind shows its own help."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from shared.cli.main import build_parser, main

REGISTRY_COMMANDS = ("shared.cli.systems", "shared.cli.keys", "shared.cli.audit")


def parsers(
    parser: argparse.ArgumentParser, name: str
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_flag_and_argument_of_the_registry_commands_has_help() -> None:
    silent = [
        f"{name}: {action.option_strings or action.dest}"
        for name, parser in parsers(build_parser(REGISTRY_COMMANDS), "tollgate")
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not action.help
    ]
    assert silent == []


def test_version_is_a_top_level_flag() -> None:
    assert any("--version" in a.option_strings for a in build_parser([])._actions)


@pytest.mark.parametrize(
    ("kind", "own", "other"),
    [("usage", "--by DIMS", "--out DIR"), ("latency", "--out DIR", "--by DIMS")],
)
def test_each_report_kind_shows_its_own_help(
    kind: str, own: str, other: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", kind, "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"usage: tollgate report {kind} ")
    assert own in shown and other not in shown
