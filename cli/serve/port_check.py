"""Is the port free? Asked before ``rag serve`` loads anything, and when it
isn't, which process holds it (when the OS tells: /proc on Linux, else lsof)."""

from __future__ import annotations

import errno
import shutil
import socket
import subprocess
import sys
from pathlib import Path


def port_problem(host: str, port: int) -> str | None:
    """None if ``host:port`` can be listened on, else why not, for the user."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As aiohttp binds: a port in TIME_WAIT is free to reuse.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return f"can't listen on {host}:{port} ({exc.strerror})"
        else:
            return None
    holder = port_holder(port)
    who = f" by {holder}" if holder else ""
    return f"port {port} on {host} is already in use{who}"


def port_holder(port: int) -> str | None:
    """ "pid 1234 (python -m http.server 8080)" for the listener on ``port``, if known."""
    pid = _linux_holder(port) if sys.platform.startswith("linux") else _lsof_holder(port)
    if pid is None:
        return None
    return f"pid {pid} ({_command(pid)})" if _command(pid) else f"pid {pid}"


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local_address is HEXIP:HEXPORT; state 0A is LISTEN.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _linux_holder(port: int) -> int | None:
    wanted = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    if not wanted:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if str(fd.readlink()) in wanted:
                    return int(proc.name)
        except OSError:
            continue  # not ours to look at, or gone
    return None


def _lsof_holder(port: int) -> int | None:
    if shutil.which("lsof") is None:
        return None
    done = subprocess.run(
        ["lsof", "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-t"],
        capture_output=True,
        text=True,
        check=False,
    )
    first = done.stdout.split()
    return int(first[0]) if first and first[0].isdigit() else None


def _command(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if shutil.which("ps") is None:
            return ""
        done = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
        return done.stdout.strip()
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:120]
