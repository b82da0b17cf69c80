"""A private redis-server on a free 127.0.0.1 port, which a test may stop and start again."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.support.processes import free_port


class PrivateRedis:
    def __init__(
        self, work: Path, config_lines: tuple[str, ...] = (), admin: tuple[str, str] | None = None
    ):
        self.port = free_port()
        self.work = work
        self._config = "\n".join(
            (
                f"port {self.port}",
                "bind 127.0.0.1",
                'save ""',
                "appendonly no",
                f"dir {work}",
                *config_lines,
            )
        )
        self._admin = admin  # (user, password) when the default user is off
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        if self._admin is None:
            return redis.Redis(port=self.port)
        return redis.Redis(port=self.port, username=self._admin[0], password=self._admin[1])

    def start(self) -> None:
        config = self.work / f"redis-{self.port}.conf"
        config.write_text(self._config + "\n")
        self.process = subprocess.Popen(
            ["redis-server", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client().ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
