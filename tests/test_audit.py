"""The audit log: every registry change, who made it, before and after, and never a secret."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.registry import admin
from shared.registry.audit import read_audit
from shared.registry.store import FileStore
from shared.settings import Settings
from tests.support.processes import tollgate


def test_every_change_is_audited_without_secrets(tmp_path: Path) -> None:
    env = {
        "TOLLGATE_REGISTRY": str(tmp_path / "systems.json"),
        "TOLLGATE_AUDIT_LOG": str(tmp_path / "audit"),
        "TOLLGATE_ACTOR": "alice@contoso.example",
    }
    assert tollgate("systems", "create", "0003R3", "--models", "gpt-4o", env=env).returncode == 0
    assert tollgate("systems", "limits", "0003R3", "--rpm", "60", env=env).returncode == 0
    key = tollgate("keys", "create", "--system", "0003R3", env=env).stdout.strip()
    assert tollgate("keys", "revoke", key.split("_")[1], env=env).returncode == 0
    assert tollgate("systems", "update", "0003R3", "--disable", env=env).returncode == 0
    assert tollgate("systems", "delete", "0003R3", "--yes", env=env).returncode == 0
    assert tollgate("keys", "create", "--system", "nope", env=env).returncode == 2  # no change

    listed = tollgate("audit", "--json", env=env)
    entries = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [e["action"] for e in entries] == [
        "systems create",
        "systems limits",
        "keys create",
        "keys revoke",
        "systems update",
        "systems delete",
    ]
    assert {e["actor"] for e in entries} == {"alice@contoso.example"}
    assert entries[0]["before"] is None and entries[-1]["after"] is None
    assert entries[1]["before"].get("limits") is None and entries[1]["after"]["limits"] == {
        "rpm": 60
    }
    revoked = entries[3]["after"]["keys"][key.split("_")[1]]
    assert revoked["revoked"] and "hash" not in revoked
    stored = "".join(p.read_text() for p in (tmp_path / "audit").rglob("*.jsonl"))
    assert key not in stored and "sha256:" not in stored
    text = tollgate("audit", "--system", "0003R3", env=env).stdout
    assert 'limits: null -> {"rpm": 60}' in text and "deleted" in text


def test_a_purge_run_again_reads_as_a_purge_not_a_creation(tmp_path: Path) -> None:
    env = {
        "TOLLGATE_REGISTRY": str(tmp_path / "systems.json"),
        "TOLLGATE_AUDIT_LOG": str(tmp_path / "audit"),
        "TOLLGATE_USAGE_RECORDS": str(tmp_path / "usage"),
        "TOLLGATE_CONTENT_LOG": str(tmp_path / "content"),
    }
    assert tollgate("systems", "create", "cli-erased", "--models", "*", env=env).returncode == 0
    for _ in range(2):
        assert tollgate("systems", "purge", "cli-erased", "--yes", env=env).returncode == 0
    rows = tollgate("audit", "--system", "cli-erased", env=env).stdout.splitlines()[1:]
    changes = [row.split("  cli-erased  ")[1] for row in rows]
    assert changes == [
        "created",
        "erased: registry entry deleted, 0 content file(s), 0 usage record(s)",
        "erased: registry entry already gone, 0 content file(s), 0 usage record(s)",
    ]


async def test_edits_are_audited_whoever_makes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As `tollgate run` makes its demo system and key: admin.edit with no audit log given
    records them in the one beside the registry file."""
    monkeypatch.delenv("TOLLGATE_AUDIT_LOG", raising=False)
    monkeypatch.setenv("TOLLGATE_ACTOR", "make-run")
    store = FileStore(tmp_path / "systems.json")
    await admin.edit(store, admin.create_system("cli-demo", "make run", ["*"]))
    new, change = admin.add_key("cli-demo", "make run")
    await admin.edit(store, change)
    await admin.edit(store, admin.revoke_key(new.key_id))
    today = datetime.now(UTC).date()
    settings = Settings.from_env({"TOLLGATE_REGISTRY": str(tmp_path / "systems.json")})
    entries = await read_audit(settings, today, today)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("systems create", "make-run"),
        ("keys create", "make-run"),
        ("keys revoke", "make-run"),
    ]
    stored = "".join(p.read_text() for p in (tmp_path / "audit").rglob("*.jsonl"))
    assert new.key not in stored and "sha256:" not in stored
