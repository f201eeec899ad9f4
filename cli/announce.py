"""``rag serve`` announces itself in its data folder, so ``rag ask``, ``rag
chat`` and ``rag ingest`` on the same folder find it (and a stale note left by
a killed server is ignored: its process is gone)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.adapters.helpers.process_identity import is_alive, this_process

ANNOUNCE_FILE = "server.json"


@dataclass(frozen=True)
class Announcement:
    http_url: str
    ws_url: str
    pid: int
    started: str | None


def local_host(host: str) -> str:
    """The address a client on this machine uses for a server bound to ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def announce(data_dir: Path, host: str, port: int) -> Path:
    pid, started = this_process()
    where = f"{local_host(host)}:{port}"
    note = Announcement(f"http://{where}/", f"ws://{where}/ws", pid, started)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ANNOUNCE_FILE
    tmp = path.with_suffix(f".{pid}.tmp")
    tmp.write_text(json.dumps(asdict(note)))
    tmp.replace(path)
    return path


def withdraw(data_dir: Path) -> None:
    """Remove our own note (not one a newer server wrote)."""
    found = read_announcement(data_dir, check_alive=False)
    if found is not None and found.pid == os.getpid():
        with contextlib.suppress(OSError):
            (data_dir / ANNOUNCE_FILE).unlink()


def read_announcement(data_dir: Path, *, check_alive: bool = True) -> Announcement | None:
    try:
        raw = json.loads((data_dir / ANNOUNCE_FILE).read_text())
        note = Announcement(
            str(raw["http_url"]), str(raw["ws_url"]), int(raw["pid"]), raw.get("started")
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and not is_alive(note.pid, note.started):
        return None
    return note
