"""A crash-safe, append-only store of finished samples.

One JSONL file per *generation identity* (model fingerprint, adapter, precision, quantization,
sampling settings, seed, prompt mode, prefix: everything but the prompt and the sample index),
named by its hash, with a ``.meta.json`` beside it saying what the hash stands for. Each line is
one finished sample: ``{"p": prompt hash, "i": sample index, "text", "tokens", "reason"}``.

* Every sample is appended the moment it finishes, in one ``write`` under an exclusive
  ``flock``, so concurrent xdist workers interleave whole lines.
* A ``kill -9`` can leave at most a torn last line; readers skip lines that do not parse, and the
  next writer first ends such a line, so nothing after it is lost. (The kernel keeps written
  data when a process dies; an ``fsync`` per sample would only add power-loss safety at the cost
  of a disk flush per sample.)
* The last line for a key wins (``--codeeval-regenerate`` appends newer samples).
* Readers pick up lines other processes appended since they last looked (``refresh``).
Knows nothing of pytest or torch.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Entry:
    text: str
    tokens: int
    reason: str


def digest(value: Any) -> str:
    """A stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class GenerationCache:
    def __init__(self, directory: Path, identity: dict[str, Any]) -> None:
        self.key = digest(identity)[:24]
        self.path = directory / f"{self.key}.jsonl"
        self._entries: dict[tuple[str, int], Entry] = {}
        self._offset = 0
        directory.mkdir(parents=True, exist_ok=True)
        meta = directory / f"{self.key}.meta.json"
        if not meta.exists():
            tmp = meta.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(identity, indent=2, sort_keys=True))
            tmp.replace(meta)
        self.refresh()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, prompt_hash: str, index: int) -> Entry | None:
        return self._entries.get((prompt_hash, index))

    def note(self, prompt_hash: str, index: int, entry: Entry) -> None:
        """Remember an entry another process has just persisted (the generation service tells
        its workers), without reading the file again."""
        self._entries[(prompt_hash, index)] = entry

    def refresh(self) -> None:
        """Read what was appended since the last look (by this or any other process)."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1  # a line still being written (or torn) waits for its newline
        for line in data[:end].splitlines():
            self._take(line)
        self._offset += end

    def _take(self, line: bytes) -> None:
        try:
            record = json.loads(line)
            key = (str(record["p"]), int(record["i"]))
            entry = Entry(str(record["text"]), int(record["tokens"]), str(record["reason"]))
        except (ValueError, KeyError, TypeError):
            return  # a torn line from a killed writer, glued to the newline its successor wrote
        self._entries[key] = entry  # the last line for a key wins

    def put(self, prompt_hash: str, index: int, entry: Entry) -> None:
        """Persist one finished sample now. A later line for the same key (a regenerated sample)
        supersedes the earlier ones; the file keeps the history."""
        line = json.dumps({"p": prompt_hash, "i": index, "text": entry.text, "tokens": entry.tokens,
                           "reason": entry.reason}, ensure_ascii=False).encode() + b"\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # end a torn line left by a killed writer
            os.write(fd, line)
        finally:
            os.close(fd)  # closing releases the lock
        self._entries[(prompt_hash, index)] = entry
