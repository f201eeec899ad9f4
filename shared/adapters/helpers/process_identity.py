"""Is the process that took something still the same, living process?

A pid alone is not enough (pids are reused), so a holder records its pid and
its start marker: the kernel's start time on Linux (``/proc/PID/stat``), or
``ps``'s start time elsewhere. ``None`` when the OS won't tell; then only the
pid is compared.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path


def start_marker(pid: int) -> str | None:
    if sys.platform.startswith("linux"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        # Field 22 (starttime, in clock ticks since boot); the command name in
        # field 2 may hold spaces, so count from the closing parenthesis.
        fields = stat.rpartition(")")[2].split()
        return fields[19] if len(fields) > 19 else None
    try:
        done = subprocess.run(
            ["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() or None


@functools.cache
def this_process() -> tuple[int, str | None]:
    """(pid, start marker) of this process, computed once."""
    return os.getpid(), start_marker(os.getpid())


def is_alive(pid: int, marker: str | None) -> bool:
    """True unless the process is certainly gone (or its pid now belongs to another)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process, but alive
    except OSError:
        return True
    if marker is None:
        return True
    current = start_marker(pid)
    return current is None or current == marker
