"""The audit log: every registry change, who made it, before and after, and never a secret."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert tollgate("systems", "delete", "0003R3", env=env).returncode == 0
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
