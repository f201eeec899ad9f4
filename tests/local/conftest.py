"""``rag serve`` as a real subprocess on a free port with its own data folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_LIMIT_S = 60.0
# Small answers keep the CPU model's part of the test short.
MODEL_ENV = {"RAG_MODEL__MAX_NEW_TOKENS": "48", "RAG_LOG_LEVEL": "INFO"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rag(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would (``python -m cli.main`` == ``rag``)."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        cwd=REPO,
        env={**os.environ, **MODEL_ENV, **(env or {}), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class LocalServer:
    data_dir: Path
    log_path: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)  # more `rag serve` options
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    seconds_to_health: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self) -> None:
        started = time.monotonic()
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cli.main",
                    "serve",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    *self.extra_args,
                ],
                cwd=REPO,
                env={**os.environ, **MODEL_ENV, **self.extra_env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        while time.monotonic() - started < START_LIMIT_S:
            if self.process.poll() is not None:
                pytest.fail(f"rag serve exited early:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as response:
                    if response.status == 200:
                        self.seconds_to_health = time.monotonic() - started
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        pytest.fail(f"rag serve did not answer /health:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)  # aiohttp's graceful shutdown
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LocalServer]]:
    servers: list[LocalServer] = []

    def make(**env: str) -> LocalServer:
        server = LocalServer(tmp_path / "data", tmp_path / f"serve-{len(servers)}.log", env)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
