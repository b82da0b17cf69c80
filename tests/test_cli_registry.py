"""The registry commands as an operator meets them: what each change says it did, refusals that
explain themselves, tables and JSON, and which registry a command works on wherever it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.auth import keys
from tests.support.processes import ROOT, tollgate

LOCATIONS = ("REGISTRY", "AUDIT_LOG", "USAGE_RECORDS", "CONTENT_LOG", "STORAGE_CONNECTION")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"TOLLGATE_REGISTRY": str(tmp_path / "systems.json"), "TOLLGATE_ACTOR": "cli-test"}


def run_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`tollgate` run from `folder`, with no registry, audit or data location set."""
    unset = tuple(f"TOLLGATE_{name}" for name in LOCATIONS)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(unset)}
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=folder,
        env={**environ, "PYTHONPATH": str(ROOT), "TOLLGATE_ACTOR": "cli-test"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_is_the_package_version() -> None:
    from importlib.metadata import version

    shown = tollgate("--version", env={})
    assert shown.returncode == 0 and shown.stdout == f"tollgate {version('tollgate')}\n"


def test_create_refuses_a_system_without_models_unless_told(env: dict[str, str]) -> None:
    refused = tollgate("systems", "create", "cli-none", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "--models '*'" in refused.stderr and "--no-models" in refused.stderr
    assert not Path(env["TOLLGATE_REGISTRY"]).exists()  # nothing written
    for system, flag in (("cli-empty", ["--models", ""]), ("cli-nothing", ["--no-models"])):
        created = tollgate("systems", "create", system, *flag, env=env)
        assert created.returncode == 0, created.stderr
        assert created.stdout == f"created system '{system}' (models: none)\n"
        assert "--add-model" in created.stderr
    every = tollgate("systems", "create", "cli-all", "--models", "*", env=env)
    assert every.stdout == "created system 'cli-all' (models: all ('*'))\n"
    assert "warning" not in every.stderr


def test_an_unknown_model_is_a_warning_naming_the_known_ones(env: dict[str, str]) -> None:
    created = tollgate("systems", "create", "cli-typo", "--models", "gpt-4o,gpt-4oo", env=env)
    assert created.returncode == 0
    assert created.stdout == "created system 'cli-typo' (models: gpt-4o, gpt-4oo)\n"
    warning = created.stderr.split("tollgate: warning: ")[1]
    assert "gpt-4oo" in warning and "Known: " in warning and "gpt-35-turbo-16k" in warning
    upstream = {"type": "azure", "endpoint": "https://x.example", "deployment": "d"}
    config = {
        "upstreams": {"u": {**upstream, "key_secret": "k"}},
        "models": {"house-model": {"upstream": "u"}},
    }
    own = {**env, "TOLLGATE_CONFIG_JSON": json.dumps(config)}
    updated = tollgate("systems", "update", "cli-typo", "--add-model", "house-model", env=own)
    assert updated.returncode == 0 and "warning" not in updated.stderr
    assert updated.stdout == (
        "updated system 'cli-typo': models: "
        '["gpt-4o", "gpt-4oo"] -> ["gpt-4o", "gpt-4oo", "house-model"]\n'
    )


def test_changes_say_what_they_did_and_key_creation_prints_only_the_key(
    env: dict[str, str],
) -> None:
    tollgate("systems", "create", "cli-say", "--models", "gpt-4o", "--name", "Say", env=env)
    created = tollgate("keys", "create", "--system", "cli-say", "--label", "batch", env=env)
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and keys.key_id_of(key) is not None
    key_id = str(keys.key_id_of(key))
    assert f"issued key {key_id} for system 'cli-say' (label 'batch')" in created.stderr
    assert key not in created.stderr
    unchanged = tollgate("systems", "update", "cli-say", "--name", "Say", env=env)
    assert unchanged.stdout == "system 'cli-say' unchanged\n"
    disabled = tollgate("systems", "update", "cli-say", "--disable", env=env)
    assert disabled.stdout == "updated system 'cli-say': disabled: false -> true\n"
    revoked = tollgate("keys", "revoke", key_id, env=env)
    assert revoked.stdout == f"revoked key {key_id} of system 'cli-say'\n"
    again = tollgate("keys", "revoke", key_id, env=env)
    assert again.stdout.startswith(f"key {key_id} of system 'cli-say' was already revoked (")
    deleted = tollgate("systems", "delete", "cli-say", "--yes", env=env)
    assert deleted.stdout == "deleted system 'cli-say' and its 1 key\n"


def test_delete_without_yes_and_without_a_terminal_refuses(env: dict[str, str]) -> None:
    tollgate("systems", "create", "cli-keep", "--models", "*", env=env)
    refused = tollgate("systems", "delete", "cli-keep", env=env)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "delete would remove system 'cli-keep' and its 0 keys" in refused.stderr
    assert "--yes" in refused.stderr
    shown = tollgate("systems", "show", "cli-keep", "--json", env=env)
    assert json.loads(shown.stdout)["id"] == "cli-keep"  # still there
    missing = tollgate("systems", "delete", "cli-gone", env=env)
    assert missing.returncode == 2 and "no system 'cli-gone'" in missing.stderr


def test_lists_have_header_rows_and_json_with_stable_keys(env: dict[str, str]) -> None:
    tollgate("systems", "create", "cli-b", "--models", "gpt-4o", env=env)
    tollgate("systems", "create", "cli-a", "--models", "*", "--name", "Alpha", env=env)
    key = tollgate("keys", "create", "--system", "cli-b", env=env).stdout.strip()
    listed = tollgate("systems", "list", env=env).stdout.splitlines()
    assert listed[0].split() == ["ID", "STATE", "MODELS", "ACTIVE", "KEYS", "NAME"]
    assert [line.split()[0] for line in listed[1:]] == ["cli-a", "cli-b"]
    systems = json.loads(tollgate("systems", "list", "--json", env=env).stdout)
    assert [sorted(s) for s in systems] == [
        ["active_keys", "created", "disabled", "id", "models", "name"]
    ] * 2
    assert systems[1]["active_keys"] == 1 and systems[0]["name"] == "Alpha"
    key_rows = tollgate("keys", "list", env=env).stdout.splitlines()
    assert key_rows[0].split()[:3] == ["KEY", "ID", "SYSTEM"] and len(key_rows) == 2
    listed_keys = json.loads(tollgate("keys", "list", "--json", env=env).stdout)
    assert [sorted(k) for k in listed_keys] == [
        ["created", "id", "label", "limits", "revoked", "system"]
    ]
    assert listed_keys[0]["id"] == keys.key_id_of(key) and key not in json.dumps(listed_keys)
    shown = json.loads(tollgate("systems", "show", "cli-b", "--json", env=env).stdout)
    settings = ["allowed_networks", "entra", "redaction", "content_logging", "cache", "limits"]
    settings.append("content_policy")
    settings.append("keys")
    assert sorted(shown) == sorted(["id", "name", "disabled", "created", "models", *settings])
    text = tollgate("systems", "show", "cli-b", env=env).stdout
    assert "models:" in text and "gpt-4o" in text and "sha256:" not in text and key not in text


def test_the_registry_is_found_from_a_subfolder_of_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / ".tollgate").mkdir(parents=True)
    deeper = project / "src" / "deeper"
    deeper.mkdir(parents=True)
    assert run_in(project, "systems", "create", "cli-here", "--models", "*").returncode == 0
    listed = run_in(deeper, "systems", "list")
    registry = project / ".tollgate" / "systems.json"
    assert listed.stderr == f"registry: {registry}\n"
    assert "cli-here" in listed.stdout
    audit = run_in(deeper, "audit", "--system", "cli-here")
    assert f"audit log: {project / '.tollgate' / 'audit'}" in audit.stderr
    assert "systems create" in audit.stdout


def test_a_missing_registry_is_said_not_shown_as_empty(tmp_path: Path) -> None:
    listed = run_in(tmp_path, "systems", "list")
    assert listed.returncode == 0
    lines = listed.stderr.splitlines()
    assert lines[0] == f"registry: {tmp_path / '.tollgate' / 'systems.json'}"
    assert lines[1].startswith("tollgate: warning: there is no registry at ")
    explicit = run_in(tmp_path, "keys", "list")
    assert "there is no registry" in explicit.stderr


def test_audit_table_has_a_header(env: dict[str, str]) -> None:
    tollgate("systems", "create", "cli-audited", "--models", "*", env=env)
    rows = tollgate("audit", env=env).stdout.splitlines()
    assert rows[0].split() == ["TIME", "ACTOR", "ACTION", "SYSTEM", "CHANGE"]
    assert rows[1].split()[1:] == ["cli-test", "systems", "create", "cli-audited", "created"]


HEAVY = (
    "openai", "aiohttp", "tiktoken", "opentelemetry", "uvicorn", "redis", "httpx",
    "azure.storage", "azure.identity", "azure.keyvault", "shared.gateway", "shared.http",
    "shared.upstream.relay", "shared.report", "shared.probe",
)  # fmt: skip
LIGHT_COMMANDS = [
    ["systems", "list"],
    ["systems", "show", "cli-light"],
    ["systems", "limits", "cli-light"],
    ["keys", "list"],
    ["audit"],
]


def test_registry_commands_leave_the_heavy_modules_unloaded(env: dict[str, str]) -> None:
    """What their start-up time rests on: none of the gateway's, the SDKs' or the reports'
    modules is imported."""
    tollgate("systems", "create", "cli-light", "--models", "gpt-4o", env=env)
    script = textwrap.dedent(
        f"""
        import sys
        from shared.cli.main import main
        for args in {LIGHT_COMMANDS!r}:
            assert main(args) == 0
        print(sorted(m for m in sys.modules if m.startswith({HEAVY!r})))
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines()[-1] == "[]"


def test_the_cache_is_turned_on_tuned_shown_and_off(env: dict[str, str]) -> None:
    tollgate("systems", "create", "cli-cache", "--models", "*", env=env)
    on = tollgate("systems", "update", "cli-cache", "--cache", "on", "--json", env=env)
    assert on.returncode == 0 and json.loads(on.stdout)["cache"] == {"ttl_seconds": 3600}
    tuned = tollgate(
        "systems", "update", "cli-cache", "--cache-ttl", "60", "--cache-scope", "faq", env=env
    )
    assert tuned.returncode == 0, tuned.stderr
    models = tollgate("systems", "update", "cli-cache", "--cache-models", "gpt-4o", env=env)
    assert models.returncode == 0
    shown = tollgate("systems", "show", "cli-cache", env=env).stdout
    line = next(line for line in shown.splitlines() if line.startswith("response cache:"))
    assert line.split(":", 1)[1].strip() == "on, gpt-4o, kept 60 s, shared scope 'faq'"
    own = tollgate("systems", "update", "cli-cache", "--cache-scope", "", "--json", env=env)
    assert json.loads(own.stdout)["cache"] == {"ttl_seconds": 60, "models": ["gpt-4o"]}
    for bad in (
        ("--cache-ttl", "0"),
        ("--cache-scope", "no spaces"),
        ("--cache", "off", "--cache-ttl", "5"),
    ):
        refused = tollgate("systems", "update", "cli-cache", *bad, env=env)
        assert refused.returncode != 0 and refused.stdout == "" and "cache" in refused.stderr
    off = tollgate("systems", "update", "cli-cache", "--cache", "off", "--json", env=env)
    assert json.loads(off.stdout)["cache"] is None


def test_blocklists_and_content_policies_from_the_command_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    assert tollgate("blocklists", "list", env=env).stdout.strip() == "no blocklists"
    added = tollgate("blocklists", "add", "names", "Nightingale", "Kestrel", env=env)
    assert added.returncode == 0 and "2 terms" in added.stdout
    again = tollgate("blocklists", "add", "names", "nightingale", env=env)  # no duplicate
    assert "2 terms" in again.stdout
    assert json.loads(tollgate("blocklists", "list", "--json", env=env).stdout) == {"names": 2}
    tollgate("systems", "create", "cli-guard", "--models", "*", env=env)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"prompt": {"hate": 2}, "blocklists": ["names"]}))
    done = tollgate("systems", "update", "cli-guard", "--content-policy", str(policy), env=env)
    assert done.returncode == 0, done.stderr
    assert "need Azure AI Content Safety: set TOLLGATE_CONTENT_SAFETY_ENDPOINT" in done.stderr
    shown = tollgate("systems", "show", "cli-guard", env=env).stdout
    assert "prompt hate>=2; blocklists names (outage: open)" in shown
    for bad, says in (
        ('{"prompt": {"hate": 9}}', "severity is 0-7"),
        ('{"blocklists": ["nope"]}', "no blocklists ['nope']"),
        ('{"patterns": ["("]}', "is no pattern"),
        ("missing.json", "cannot read"),
    ):
        refused = tollgate("systems", "update", "cli-guard", "--content-policy", bad, env=env)
        assert refused.returncode != 0 and says in refused.stderr, refused.stderr
    in_use = tollgate("blocklists", "delete", "names", "--yes", env=env)
    assert in_use.returncode != 0 and "used by cli-guard" in in_use.stderr
    off = tollgate("systems", "update", "cli-guard", "--content-policy", "off", "--json", env=env)
    assert json.loads(off.stdout)["content_policy"] is None
    assert tollgate("blocklists", "delete", "names", "--yes", env=env).returncode == 0
    audit = tollgate("audit", "--json", env=env).stdout
    assert "blocklist:names" in audit and "blocklists set" in audit
