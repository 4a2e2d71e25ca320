"""What travels between the plugin and the fork server: newline-delimited JSON, both ways.

JSON rather than pickle because the server's replies carry text that untrusted programs wrote.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# The package's parent directory: isolated interpreters (-I ignores PYTHONPATH and the current
# directory, so nothing there can inject modules) import the package from here.
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


def isolated_command(module: str, function: str = "main") -> list[str]:
    """argv for ``python -I`` running ``module.function()`` of this package, and nothing else."""
    boot = f"import sys; sys.path.insert(0, {_PACKAGE_PARENT!r}); from {module} import {function}; {function}()"
    return [sys.executable, "-I", "-c", boot]

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Per-sample resource limits (the time limit comes with each request)."""

    memory_bytes: int = 4096 * MiB  # address space; evalplus uses 4 GiB too
    output_bytes: int = 64 * 1024  # kept of stdout and of stderr, each; the rest is drained
    file_bytes: int = 64 * MiB  # largest file a sample may write
    open_files: int = 256
    processes: int = 256  # RLIMIT_NPROC, per sample uid (root servers) or per user
    grace_seconds: float = 10.0  # the server's backstop beyond a supervisor's own deadline
    scratch_bytes: int = 256 * MiB  # a sample's writable tmpfs (``namespaces`` mode): size ...
    scratch_inodes: int = 16384  # ... and files

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class LineReader:
    """Splits a byte stream read from a file descriptor into JSON messages."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buf = b""

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """Read once; return the complete messages and whether the stream ended."""
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            return [], True
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()], False
