"""Framing of the judge's channel to a sample: length-prefixed messages over a socket pair.

A frame is a 4-byte big-endian length and that many bytes of :mod:`wire` data. The judge's side
never blocks past a deadline (a sample that stops reading or writing must not hang the judge);
the sample's side blocks, since it has nothing else to do and its supervisor bounds its time.
"""

from __future__ import annotations

import os
import select
import time
from typing import Callable

HEADER = 4
MAX_FRAME = 256 << 20  # arguments or results larger than this are refused, not judged


class ChannelClosed(EOFError):
    """The other side closed the channel (or died) before a whole frame arrived."""


class ChannelTimeout(TimeoutError):
    """The deadline passed with the frame incomplete."""


class ChannelError(ValueError):
    """A frame no honest peer sends (too large)."""


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise ChannelError(f"a message of {len(payload)} bytes is over the {MAX_FRAME >> 20} MiB limit")
    return len(payload).to_bytes(HEADER, "big") + payload


Pump = dict[int, Callable[[], bool]]  # other descriptors to serve while waiting: fd -> read once


def send(fd: int, payload: bytes, deadline: float | None = None, pump: Pump | None = None) -> None:
    """Write one frame; with a ``deadline`` (time.monotonic), on a non-blocking ``fd``."""
    view = memoryview(frame(payload))
    while view:
        # write first, wait only when the socket is full: a message usually fits its buffer,
        # and each select is a system call of every round trip of every sample
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            if deadline is None:
                raise  # a blocking descriptor never says so
            _wait(fd, deadline, True, pump)
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed("the other side closed the channel") from None
        else:
            if view and deadline is not None and time.monotonic() >= deadline:
                raise ChannelTimeout("no answer before the deadline")


def recv(fd: int, deadline: float | None = None, limit: int = MAX_FRAME, pump: Pump | None = None) -> bytes:
    """Read one frame; with a ``deadline`` (time.monotonic), on a non-blocking ``fd``."""
    size = int.from_bytes(_read_exactly(fd, HEADER, deadline, pump), "big")
    if size > limit:
        raise ChannelError(f"a frame of {size} bytes announced; at most {limit} are accepted")
    return _read_exactly(fd, size, deadline, pump)


def _read_exactly(fd: int, n: int, deadline: float | None, pump: Pump | None = None) -> bytes:
    chunks: list[bytes] = []
    while n:
        # read first, wait only when nothing is there yet (the frame's payload usually arrives
        # with its header)
        try:
            chunk = os.read(fd, min(n, 1 << 20))
        except BlockingIOError:
            if deadline is None:
                raise
            _wait(fd, deadline, False, pump)
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise ChannelClosed("the other side closed the channel")
        chunks.append(chunk)
        n -= len(chunk)
        if n and deadline is not None and time.monotonic() >= deadline:
            raise ChannelTimeout("no answer before the deadline")  # a frame trickled past it
    return b"".join(chunks)


def _wait(fd: int, deadline: float, write: bool, pump: Pump | None) -> None:
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ChannelTimeout("no answer before the deadline")
        extra = list(pump) if pump else []
        try:
            readable, writable, _ = select.select(extra if write else [fd, *extra], [fd] if write else [], [], left)
        except InterruptedError:
            continue
        for other in readable:
            if other != fd and pump is not None and not pump[other]():
                del pump[other]  # at its end: nothing more to serve
        if (writable if write else fd in readable):
            return
