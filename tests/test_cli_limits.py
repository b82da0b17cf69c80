"""`tollgate systems limits`: every limit that applies shown at once, `--clear` clearing only
the target it names, the explicit ways to clear models', keys' or all limits, and each change
saying what it set, cleared and left in force."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from shared.cli import confirm
from shared.cli.errors import CommandError
from shared.cli.main import main

SYSTEM = "cli-limits"


@pytest.fixture
def key_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A system with limits of its own, for gpt-4o and for its one key."""
    monkeypatch.setenv("TOLLGATE_REGISTRY", str(tmp_path / "systems.json"))
    monkeypatch.setenv("TOLLGATE_ACTOR", "cli-test")
    assert main(["systems", "create", SYSTEM, "--models", "gpt-4o,gpt-4-turbo"]) == 0
    assert main(["keys", "create", "--system", SYSTEM]) == 0
    listed = json.loads((tmp_path / "systems.json").read_text())
    (key,) = listed["systems"][SYSTEM]["keys"]
    assert main(["systems", "limits", SYSTEM, "--rpm", "600", "--tokens-per-day", "9000"]) == 0
    assert main(["systems", "limits", SYSTEM, "--model", "gpt-4o", "--tpm", "50000"]) == 0
    assert main(["systems", "limits", SYSTEM, "--key", key, "--rpm", "60"]) == 0
    return str(key)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def limits_json(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    shown: dict[str, object] = json.loads(run(capsys, "systems", "limits", SYSTEM, "--json"))
    return shown


def test_every_limit_that_applies_is_shown(key_id: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [line.split() for line in run(capsys, "systems", "limits", SYSTEM).splitlines()]
    assert rows == [
        [
            "SCOPE",
            "RPM",
            "TPM",
            "CONCURRENCY",
            "TOKENS/DAY",
            "TOKENS/MONTH",
            "BUDGET/DAY",
            "BUDGET/MONTH",
        ],
        ["system", "600", "-", "-", "9000", "-", "-", "-"],
        ["model", "gpt-4o", "-", "50000", "-", "-", "-", "-", "-"],
        ["key", key_id, "60", "-", "-", "-", "-", "-", "-"],
    ]
    assert limits_json(capsys) == {
        "system": SYSTEM,
        "limits": {"rpm": 600, "tokens_per_day": 9000},
        "models": {"gpt-4o": {"tpm": 50000}},
        "keys": {key_id: {"rpm": 60}},
    }


def test_clear_removes_only_the_systems_own_limits(
    key_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    said = run(capsys, "systems", "limits", SYSTEM, "--clear")
    assert said == (
        f"limits of system '{SYSTEM}': cleared system (rpm=600 tokens_per_day=9000); "
        f"still in force: model gpt-4o (tpm=50000), key {key_id} (rpm=60)\n"
    )
    assert limits_json(capsys) == {
        "system": SYSTEM,
        "limits": {},
        "models": {"gpt-4o": {"tpm": 50000}},
        "keys": {key_id: {"rpm": 60}},
    }


def test_models_and_keys_limits_have_their_own_clears(
    key_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    said = run(capsys, "systems", "limits", SYSTEM, "--clear-models")
    assert "cleared model gpt-4o (tpm=50000)" in said and f"key {key_id} (rpm=60)" in said
    said = run(capsys, "systems", "limits", SYSTEM, "--clear-keys")
    assert said == (
        f"limits of system '{SYSTEM}': cleared key {key_id} (rpm=60); "
        "still in force: system (rpm=600 tokens_per_day=9000)\n"
    )
    assert limits_json(capsys)["models"] == {} and limits_json(capsys)["keys"] == {}


def test_clear_all_clears_everything_and_says_so(
    key_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    said = run(capsys, "systems", "limits", SYSTEM, "--clear-all")
    assert said == (
        f"limits of system '{SYSTEM}': cleared system (rpm=600 tokens_per_day=9000), "
        f"model gpt-4o (tpm=50000), key {key_id} (rpm=60); no other limits\n"
    )
    assert run(capsys, "systems", "limits", SYSTEM) == f"system '{SYSTEM}' has no limits\n"


def test_one_target_cleared_and_set_at_once(
    key_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    said = run(capsys, "systems", "limits", SYSTEM, "--model", "gpt-4o", "--clear", "--rpm", "5")
    assert said.startswith(f"limits of system '{SYSTEM}': model gpt-4o now rpm=5; still in force")
    assert limits_json(capsys)["models"] == {"gpt-4o": {"rpm": 5}}
    removed = run(capsys, "systems", "limits", SYSTEM, "--tokens-per-day", "none")
    assert removed.startswith(f"limits of system '{SYSTEM}': system now rpm=600;")


def test_clearing_every_model_does_not_go_with_one_model(
    key_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["systems", "limits", SYSTEM, "--model", "gpt-4o", "--clear-models"]) == 2
    assert "without --model/--key" in capsys.readouterr().err


def test_delete_asks_on_a_terminal(key_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal("n\n"))
    assert main(["systems", "delete", SYSTEM]) == 1  # answered no: kept
    monkeypatch.setattr("sys.stdin", Terminal("y\n"))
    assert main(["systems", "delete", SYSTEM]) == 0
    assert main(["systems", "show", SYSTEM]) == 2  # gone


def test_no_terminal_and_no_yes_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))  # not a terminal: never read
    with pytest.raises(CommandError, match="add --yes"):
        confirm.confirmed("Delete?", "delete would remove it", yes=False)
    assert confirm.confirmed("Delete?", "delete would remove it", yes=True)
