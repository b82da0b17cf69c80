"""The bench's own processes: the simulator, gateways and a private Redis, on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - a loopback URL of our own
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def start(
    name: str, args: list[str], env: dict[str, str], ready: str, url: str, log: Path
) -> Service:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    service = Service(name, process, url, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{service.log_tail()}")
        if _answers(ready):
            return service
        time.sleep(0.1)
    service.stop()
    raise RuntimeError(f"{name} did not become ready:\n{service.log_tail()}")


def start_simulator(key: str, log: Path) -> Service:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # "--key=": a random key may start with "-".
    args = [sys.executable, "-m", "shared.simulator", "--port", str(port), f"--key={key}"]
    return start("simulator", args, {}, f"{url}/_sim/requests", url, log)


def start_reference(upstream: str, log: Path) -> Service:
    """The reference relay (bench/reference_relay.py) in front of the same upstream."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "bench.reference_relay", "--port", str(port)]
    return start("reference", [*args, "--upstream", upstream], {}, f"{url}/healthz", url, log)


def pin(pid: int, cpus: set[int]) -> None:
    """Every thread of the process onto `cpus` (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def start_gateway(name: str, env: dict[str, str], log: Path, workers: int = 1) -> Service:
    """The gateway as users run it: `tollgate serve`, one worker process unless told."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "shared.cli", "serve", "--port", str(port)]
    args += ["--workers", str(workers)] if workers > 1 else []
    return start(name, args, env, f"{url}/healthz", url, log)


def tollgate(env: dict[str, str], *args: str) -> str:
    """Run a `tollgate` command; its stdout, or an error naming the command."""
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"tollgate {args[0]} {args[1]} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def process_tree(pid: int) -> list[int]:
    """The process and its live descendants (`tollgate serve --workers N`: one per worker)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            queue += [int(child) for child in task.read_text().split()]
    return found


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process and its live descendants have used so far."""
    total = 0
    for member in process_tree(pid):
        stat = Path(f"/proc/{member}/stat").read_text()
        # The command name (field 2) may hold spaces; the fields after it are plain numbers.
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def peak_rss_mb(pid: int) -> float:
    """The largest peak RSS of the process and its descendants: per worker, not summed."""
    return max(_own_peak_rss_mb(member) for member in process_tree(pid))


def _own_peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


class PrivateRedis:
    """A throwaway redis-server, for machines where none listens on the usual port."""

    def __init__(self, work: Path) -> None:
        self.port = free_port()
        config = work / "redis.conf"
        config.write_text(f'port {self.port}\nbind 127.0.0.1\nsave ""\nappendonly no\ndir {work}\n')
        self.process = subprocess.Popen(
            ["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
