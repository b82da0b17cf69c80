"""The container and on-premises recipes (Dockerfile, .dockerignore, compose.yaml, deploy/) work.

No container runtime runs on these machines, so the Dockerfile is replayed instead: its
`python`/`pip` steps into a fresh venv (the image's venv), its COPY lines (through
.dockerignore) into a fresh folder (its WORKDIR), its ENV with the image's paths mapped to
temporary folders, then its own CMD (0.0.0.0 made 127.0.0.1, a free port for 7071) serves the
seed's `requests` snippet against the simulator, and its own HEALTHCHECK command is run. Steps
that administer the image (useradd, install -d) are not replayed; what they promise (a user
that is not root) is checked by reading the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from shared.auth.secrets import EnvSecretProvider
from shared.upstream.config import parse_config
from tests.support.processes import Service, free_port, start_simulator

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "deploy" / "tollgate.service"
ENV_EXAMPLE = ROOT / "deploy" / "tollgate.env.example"
COMPOSE = ROOT / "compose.yaml"
DOCS = ROOT / "docs" / "on-premises.md"
SIM_KEY = "packaging-sim-key-0123456789"
SEED_SYSTEM = "0003R3"
SERVER_PACKAGES = ("uvicorn", "uvloop", "httptools")  # `tollgate serve`'s, in requirements-dev
DEV_TOOLS = ("pytest", "ruff", "mypy", "hypothesis", "matplotlib")
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
WORKERS = 2  # through TOLLGATE_WORKERS: the CMD's own way to set --workers


# --- reading the Dockerfile ----------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    name: str  # FROM, RUN, COPY, ... (upper case)
    args: str


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        name, _, args = (pending + line).partition(" ")
        found.append(Instruction(name.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def only(name: str) -> Instruction:
    matching = [i for i in instructions() if i.name == name]
    assert len(matching) == 1, f"expected one {name}, found {len(matching)}"
    return matching[0]


def exec_form(args: str) -> list[str]:
    parsed = json.loads(args)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), args
    return parsed


def healthcheck_command() -> list[str]:
    args = only("HEALTHCHECK").args
    _, found, command = args.partition(" CMD ")
    assert found, f"HEALTHCHECK without CMD: {args}"
    return exec_form(command.strip())


def run_segments() -> list[list[str]]:
    """Each command of each RUN (split on &&), as words."""
    return [
        shlex.split(segment)
        for step in instructions()
        if step.name == "RUN"
        for segment in step.args.split("&&")
    ]


def pip_installs() -> list[list[str]]:
    """The arguments after `pip install` of every install step."""
    found = []
    for words in run_segments():
        if words[:2] == ["pip", "install"]:
            found.append(words[2:])
        elif words[:4] == ["python", "-m", "pip", "install"]:
            found.append(words[4:])
    return found


def env_of(step: Instruction) -> dict[str, str]:
    pairs = [word.partition("=") for word in shlex.split(step.args)]
    assert all(sep for _, sep, _ in pairs), f"ENV in key=value form only: {step.args}"
    return {key: value for key, _, value in pairs}


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for step in instructions():
        if step.name == "ENV":
            env.update(env_of(step))
    return env


def venv_folder() -> str:
    """The image's venv: the folder of its `python -m venv` step."""
    (folder,) = [w[3] for w in run_segments() if w[:3] == ["python", "-m", "venv"]]
    return folder


def volume() -> str:
    """The image's one volume: its state folder."""
    args = only("VOLUME").args
    (folder,) = exec_form(args) if args.startswith("[") else args.split()
    return folder


def image_folders() -> list[str]:
    """The image's own folders the replay stands in for: venv, WORKDIRs, volume."""
    workdirs = [step.args for step in instructions() if step.name == "WORKDIR"]
    return [venv_folder(), *workdirs, volume()]


# --- .dockerignore -------------------------------------------------------------------------


def _glob(pattern: str) -> re.Pattern[str]:
    """Docker's pattern language: * and ? within one path segment, ** across segments."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        rules.append((keep, _glob(line.lstrip("!").strip("/"))))
    return rules


def ignored(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether the build context leaves `relative` out: the last rule matching it, or one of
    its folders, decides."""
    parts = relative.strip("/").split("/")
    paths = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for keep, pattern in rules:
        if any(pattern.match(p) for p in paths):
            verdict = not keep
    return verdict


# --- replaying the Dockerfile --------------------------------------------------------------


@dataclass
class Image:
    """The Dockerfile replayed: its folders on this machine, its ENV, CMD and HEALTHCHECK."""

    root: Path
    folders: dict[str, Path] = field(default_factory=dict)  # image path -> local folder
    env: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None

    def local(self, value: str) -> str:
        """`value` (a path or a PATH-like list) with the image's folders mapped to local ones."""
        parts = []
        for part in value.split(":"):
            for image_path, folder in self.folders.items():
                if part == image_path or part.startswith(image_path + "/"):
                    part = str(folder) + part[len(image_path) :]
                    break
            parts.append(part)
        return ":".join(parts)

    @property
    def venv(self) -> Path:
        return self.folders[venv_folder()]

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def served_env(self) -> dict[str, str]:
        env = {"PATH": BASE_PATH, "HOME": str(self.root / "home"), "LANG": "C.UTF-8"}
        for key, value in self.env.items():
            env[key] = self.local(value.replace("$PATH", env["PATH"]))
        return env


def replay(root: Path) -> Image:
    image = Image(root)
    for image_path in image_folders():
        image.folders[image_path] = root / image_path.strip("/").replace("/", "_")
    for step in instructions():
        if step.name == "ENV":
            image.env.update(env_of(step))
        elif step.name == "WORKDIR":
            image.workdir = Path(image.local(step.args))
            image.workdir.mkdir(parents=True, exist_ok=True)
        elif step.name == "COPY":
            copy(image, shlex.split(step.args))
        elif step.name == "RUN":
            for segment in step.args.split("&&"):
                run(image, shlex.split(segment))
    for folder in [*image.folders.values(), root / "home"]:
        folder.mkdir(parents=True, exist_ok=True)
    return image


def copy(image: Image, words: list[str]) -> None:
    assert image.workdir is not None, "COPY before WORKDIR"
    assert not any(w.startswith("--") for w in words), f"COPY flags are not replayed: {words}"
    *sources, target = words
    destination = image.workdir / image.local(target)
    into_folder = len(sources) > 1 or target.endswith("/") or target in (".", "./")
    rules = ignore_rules()
    for source in sources:
        assert not ignored(source, rules), f".dockerignore leaves out {source}, which COPY needs"
        origin = ROOT / source
        if origin.is_dir():
            copy_tree(origin, destination, source, rules)
        else:
            target_file = destination / origin.name if into_folder else destination
            target_file.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target_file)


def copy_tree(
    origin: Path, destination: Path, relative: str, rules: list[tuple[bool, re.Pattern[str]]]
) -> None:
    for path in origin.rglob("*"):
        inside = f"{relative.strip('/')}/{path.relative_to(origin).as_posix()}"
        if path.is_file() and not ignored(inside, rules):
            target = destination / path.relative_to(origin)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def run(image: Image, words: list[str]) -> None:
    """Replay one command of a RUN: python (and pip) run in the venv; the rest administers the
    image (users, folders) and is checked by reading the file instead."""
    if words[:3] == ["python", "-m", "venv"]:
        command = [sys.executable, "-m", "venv", image.local(words[3])]
    elif words[:2] == ["pip", "install"]:
        command = [str(image.python), "-m", "pip", *words[1:]]
    elif words[:1] == ["python"]:
        command = [str(image.python), *words[1:]]
    else:
        return
    outcome = subprocess.run(
        command,
        cwd=image.workdir or image.root,
        env=build_env(),
        capture_output=True,
        text=True,
        timeout=480,
        check=False,
    )
    assert outcome.returncode == 0, f"{words} failed:\n{outcome.stdout[-3000:]}{outcome.stderr}"


def build_env() -> dict[str, str]:
    """This machine's environment (its pip configuration, index and cache), minus this venv and
    the image's PIP_NO_CACHE_DIR: the replay reuses pip's cache."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_NO_CACHE_DIR"}
    return {k: v for k, v in os.environ.items() if k not in drop}


# --- serving from the replayed image -------------------------------------------------------


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds * 10)):
        if process.poll() is not None:
            raise AssertionError(f"the server exited:\n{log.read_text(errors='replace')}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered:\n{log.read_text(errors='replace')}")


def workers_of(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def wait_for_workers(pid: int, count: int, seconds: float = 30) -> list[int]:
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds * 10)):
        workers = workers_of(pid)
        if len(workers) >= count or time.monotonic() > deadline:
            return workers
        time.sleep(0.1)
    return workers_of(pid)


def cli(image: Image, env: dict[str, str], *args: str) -> str:
    outcome = subprocess.run(
        [str(image.venv / "bin" / "tollgate"), *args],
        cwd=image.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert outcome.returncode == 0, outcome.stderr
    return outcome.stdout.strip()


def served_command(port: int) -> list[str]:
    """The image's CMD, listening on 127.0.0.1 and a free port instead of 0.0.0.0:<EXPOSE>."""
    exposed = only("EXPOSE").args.split("/")[0]
    command = exec_form(only("CMD").args)
    text = " ".join(command)
    assert "--host 0.0.0.0" in text and f"--port {exposed}" in text, command
    return [
        word.replace("--host 0.0.0.0", "--host 127.0.0.1").replace(
            f"--port {exposed}", f"--port {port}"
        )
        for word in command
    ]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    started = time.monotonic()
    replayed = replay(tmp_path_factory.mktemp("image"))
    print(f"Dockerfile replayed in {time.monotonic() - started:.1f} s")
    return replayed


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Service]:
    service = start_simulator(SIM_KEY, tmp_path / "simulator.log")
    try:
        yield service
    finally:
        service.stop()


@pytest.mark.timeout(900)
def test_the_replayed_image_serves_the_seed_snippet(
    image: Image, simulator: Service, tmp_path: Path
) -> None:
    # The replay's code is the copy, not this checkout, and it holds no dev tools.
    where = subprocess.run(
        [str(image.python), "-c", "import asgi, shared; print(asgi.__file__, shared.__file__)"],
        cwd=tmp_path,
        env={"PATH": BASE_PATH},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    assert image.workdir is not None
    assert all(Path(p).is_relative_to(image.workdir) for p in where), where
    installed = subprocess.run(
        [str(image.python), "-m", "pip", "list", "--format=json"],
        env=build_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    names = {entry["name"].lower() for entry in json.loads(installed)}
    assert not names & set(DEV_TOOLS), names & set(DEV_TOOLS)
    assert set(SERVER_PACKAGES) <= names

    env = {
        **image.served_env(),
        "TOLLGATE_SIMULATOR_URL": simulator.url,
        "TOLLGATE_SECRET_SIMULATOR_KEY": SIM_KEY,
        "TOLLGATE_PROBE_ENABLED": "false",
        "TOLLGATE_WORKERS": str(WORKERS),
    }
    cli(image, env, "systems", "create", SEED_SYSTEM, "--name", "Claims", "--models", "gpt-4o")
    key = cli(image, env, "keys", "create", "--system", SEED_SYSTEM, "--label", "packaging")
    state = Path(image.local(image.env["TOLLGATE_REGISTRY"])).parent
    assert (state / "systems.json").is_file()  # in the volume, as the image's ENV says

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gateway.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            served_command(port),
            cwd=image.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: nothing outlives the test
        )
    server = Service(process, url, log_path)
    workers: list[int] = []
    left: list[int] = []
    try:
        wait_for(f"{url}/healthz", process, log_path)
        assert_exec(process.pid)
        workers = wait_for_workers(process.pid, WORKERS)
        assert len(workers) == WORKERS, server.log_text()
        check_healthcheck(env, port)
        check_seed_snippet(url, key)
        ready = requests.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
    finally:
        server.stop()
        left = [pid for pid in workers if Path(f"/proc/{pid}").exists()]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, server.log_text()  # a graceful stop on SIGTERM
    assert not left, "workers outlived the server"
    check_usage_records(Path(image.local(image.env["TOLLGATE_USAGE_RECORDS"])))


def assert_exec(pid: int) -> None:
    """The CMD's shell gave way to tollgate (`exec`), which gets the stop signal itself."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert Path(argv[0].decode()).name not in ("sh", "dash", "bash"), argv
    assert any(a.endswith(b"/bin/tollgate") for a in argv[:2]) and b"serve" in argv, argv


def check_healthcheck(env: dict[str, str], port: int) -> None:
    exposed = only("EXPOSE").args.split("/")[0]
    command = [w.replace(f":{exposed}/", f":{port}/") for w in healthcheck_command()]
    assert any(f":{port}/healthz" in w for w in command), command
    outcome = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
    assert outcome.returncode == 0, outcome.stderr


def check_seed_snippet(url: str, key: str) -> None:
    # The seed's snippet, but for the URL, the key and a timeout.
    url = f"{url}/gateway/chat/completions/gpt-4o"
    headers = {"api-key": key, "systemId": SEED_SYSTEM}
    payload = {"messages": [{"role": "user", "content": "hello"}]}
    response = requests.post(url, headers=headers, json=payload, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"]
    assert response.headers["x-tollgate-upstream"] == "sim-gpt-4o"


def check_usage_records(folder: Path) -> None:
    """A stopped server has written its usage records where the image's ENV says."""
    records = [
        json.loads(line)
        for path in folder.rglob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    chats = [r for r in records if r["route"] == "gateway" and r["status"] == 200]
    assert [r["system"] for r in chats] == [SEED_SYSTEM], records


# --- what the files promise ----------------------------------------------------------------


def test_dockerfile_base_user_healthcheck_and_port() -> None:
    assert re.fullmatch(r"python:3\.11-slim(-[a-z]+)?", only("FROM").args), only("FROM").args
    user = only("USER").args
    assert user not in ("root", "0") and not user.startswith(("root:", "0:")), user
    steps = [i.name for i in instructions()]
    assert steps.index("USER") < steps.index("CMD")
    assert any("/healthz" in word for word in healthcheck_command())
    assert healthcheck_command()[0] == "python"  # slim has no curl
    command = " ".join(exec_form(only("CMD").args))
    assert command.startswith("sh -c exec tollgate serve "), command
    assert '--workers "${TOLLGATE_WORKERS:-1}"' in command
    assert f"--port {only('EXPOSE').args}" in command


def test_dockerfile_installs_the_runtime_requirements_and_no_dev_tools() -> None:
    assert "requirements-dev" not in " ".join(i.args for i in instructions())
    installs = pip_installs()
    assert installs and installs[0][:2] == ["-r", "requirements.txt"]
    named = {
        re.split(r"[<>=!~;\[ ]", word)[0].lower()
        for install in installs
        for word in install
        if not word.startswith("-")
    }
    assert not named & set(DEV_TOOLS), named


def test_dockerfile_bakes_in_no_secret() -> None:
    assert "ARG" not in [i.name for i in instructions()]  # build arguments stay in the image
    for key in image_env():
        assert not key.startswith("TOLLGATE_SECRET_"), key
        assert key not in ("AZURE_CLIENT_SECRET", "TOLLGATE_STORAGE_CONNECTION_STRING"), key
        assert key not in ("TOLLGATE_REDIS_URL", "TOLLGATE_KEYVAULT_URL", "AZURE_CLIENT_ID"), key


def test_dockerfile_pins_the_server_as_requirements_dev_does() -> None:
    wanted = requirement_specs(ROOT / "requirements-dev.txt")
    words = {w.split(">")[0].split("=")[0]: w for install in pip_installs() for w in install}
    for name in SERVER_PACKAGES:
        assert words.get(name) == f"{name}{wanted[name]}", (name, words.get(name), wanted[name])


def requirement_specs(path: Path) -> dict[str, str]:
    specs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*([^;#\s]*)", line)
        if match and not line.lstrip().startswith(("#", "-")):
            specs[match.group(1).lower()] = match.group(2)
    return specs


def test_dockerfile_keeps_state_in_the_volume() -> None:
    env = image_env()
    for name in (
        "TOLLGATE_REGISTRY",
        "TOLLGATE_USAGE_RECORDS",
        "TOLLGATE_CONTENT_LOG",
        "TOLLGATE_AUDIT_LOG",
        "TOLLGATE_PROBE_RESULTS",
        "TOLLGATE_PROBE_SPOOL",
    ):
        assert env[name].startswith(volume() + "/"), (name, env[name])


def test_dockerignore_leaves_out_what_the_image_must_not_hold() -> None:
    rules = ignore_rules()
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        "node_modules/.bin/azurite-blob",
        ".tollgate/demo-key",
        ".tollgate/systems.json",
        "tests/test_packaging.py",
        "bench-results/bench.json",
        "local.settings.json",
        "deploy/tollgate.env",
        ".mypy_cache/x",
        "shared/__pycache__/errors.cpython-311.pyc",
        "tollgate.egg-info/PKG-INFO",
    ):
        assert ignored(path, rules), path
    for path in ("shared/errors.py", "shared/limits/lua/admit.lua", "requirements.txt"):
        assert not ignored(path, rules), path


# --- compose.yaml (no YAML parser here: its structure by indentation) ----------------------


def yaml_block(lines: list[str], key: str, indent: int) -> list[str]:
    """The lines under `key:` at `indent` spaces, up to the next key at that indent or less."""
    start = next(
        (n for n, line in enumerate(lines) if re.fullmatch(rf" {{{indent}}}{key}:.*", line)), None
    )
    assert start is not None, f"{key} not found at indent {indent}"
    block = []
    for line in lines[start + 1 :]:
        content = line.strip() and not line.lstrip().startswith("#")
        if content and len(line) - len(line.lstrip(" ")) <= indent:
            break
        block.append(line)
    return block


def test_compose_runs_the_gateway_with_redis_and_azurite() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "\t" not in text
    lines = text.splitlines()
    services = yaml_block(lines, "services", 0)
    names = [m.group(1) for line in services if (m := re.fullmatch(r"  ([\w-]+):\s*", line))]
    assert sorted(names) == ["azurite", "redis", "tollgate"], names
    gateway = "\n".join(yaml_block(services, "tollgate", 2))
    assert re.search(r"^    build: \.$", gateway, re.M)
    assert re.search(r"^    env_file: deploy/tollgate\.env", gateway, re.M)
    assert "TOLLGATE_REDIS_URL: redis://redis:6379" in gateway
    assert "BlobEndpoint=http://azurite:10000/devstoreaccount1;" in gateway
    assert "127.0.0.1:7071:7071" in gateway  # plain HTTP only to the proxy on this host
    assert re.search(r"^      - tollgate-state:/var/lib/tollgate$", gateway, re.M)
    for name, image in (("redis", "redis:7-alpine"), ("azurite", "azure-storage/azurite:")):
        block = "\n".join(yaml_block(services, name, 2))
        assert f"image: {image}" in block or f"image: mcr.microsoft.com/{image}" in block
        assert re.search(r"^    healthcheck:$", block, re.M), name
        assert "ports:" not in block, f"{name} is for the gateway only"
    for volume in ("tollgate-state", "redis-data", "azurite-data"):
        assert re.search(rf"^  {volume}:\s*$", "\n".join(yaml_block(lines, "volumes", 0)), re.M)
    azurite_npm = json.loads((ROOT / "package.json").read_text())["devDependencies"]["azurite"]
    assert f"azure-storage/azurite:{azurite_npm}" in text  # the version the tests run


def test_compose_stores_in_blob_containers() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    for name in ("TOLLGATE_REGISTRY", "TOLLGATE_USAGE_RECORDS", "TOLLGATE_AUDIT_LOG"):
        match = re.search(rf"^      {name}: (\S+)$", text, re.M)
        assert match, name
        container = match.group(1).split("/")[0]
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}", container), container


# --- the systemd unit and the env file -----------------------------------------------------


def unit_entries(path: Path = UNIT) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def test_systemd_unit_runs_the_venv_as_its_own_user_hardened() -> None:
    service = dict(unit_entries()["Service"])
    assert service["User"] not in ("", "root", "0")
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/tollgate/tollgate.env"
    command = service["ExecStart"]
    assert re.match(r"/opt/tollgate/\S+/bin/tollgate serve ", command), command
    assert "--workers ${TOLLGATE_WORKERS}" in command
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    state = volume()  # the image's volume: the same state folder
    assert state in service["ReadWritePaths"].split()
    assert service["StateDirectory"] == Path(state).name
    assert "WantedBy" in dict(unit_entries()["Install"])


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze on this machine")
    command = dict(unit_entries()["Service"])["ExecStart"].split()[0]
    unit = tmp_path / "tollgate.service"  # its program must exist for verify: any will do
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(command, sys.executable))
    outcome = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    assert outcome.returncode == 0 and not outcome.stderr.strip(), outcome.stderr


def env_example_entries() -> dict[str, str]:
    entries = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), line
            assert not value.startswith(("'", '"')) and " #" not in value, line
            entries[key] = value
    return entries


def test_env_example_holds_names_not_secrets() -> None:
    entries = env_example_entries()
    for key, value in entries.items():
        if key.startswith("TOLLGATE_SECRET_") or key in (
            "AZURE_CLIENT_SECRET",
            "TOLLGATE_REDIS_URL",
        ):
            assert value == "", f"{key} must be empty in the example"
    assert entries["TOLLGATE_WORKERS"].isdigit()
    assert entries["TOLLGATE_REGISTRY"].startswith(volume() + "/")


def test_env_example_config_is_valid() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    match = re.search(r"^# TOLLGATE_CONFIG_JSON=(\{.*\})$", text, re.M)
    assert match
    raw = json.loads(match.group(1))
    assert set(parse_config(raw).models) == set(raw["models"])
    for upstream in raw["upstreams"].values():  # its key's variable is in the example
        assert EnvSecretProvider.env_var_name(upstream["key_secret"]) in env_example_entries()


def settings_the_code_reads() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.joinpath("shared").rglob("*.py"), ROOT / "function_app.py"]:
        names |= set(re.findall(r"TOLLGATE_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")))
    return names


@pytest.mark.parametrize("path", [DOCKERFILE, COMPOSE, UNIT, ENV_EXAMPLE, DOCS], ids=str)
def test_every_setting_named_is_one_the_code_reads(path: Path) -> None:
    known = settings_the_code_reads() | {"TOLLGATE_WORKERS"}  # the recipes' own
    named = set(re.findall(r"TOLLGATE_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8")))
    unknown = {n for n in named - known if not n.startswith("TOLLGATE_SECRET_")}
    assert not unknown, f"{path.name} names settings the code does not read: {sorted(unknown)}"
