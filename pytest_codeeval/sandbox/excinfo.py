"""Describing an exception in one line and a bounded traceback tail, for code that never lived
in a file (``<completion>``, ``<tests:HumanEval/3>``): shared by the judge and the sample's stub.

Bounded on purpose: formatting all 10**6 frames of a deep recursion would take seconds, which
would turn a failure into a timeout.
"""

from __future__ import annotations

import linecache
import traceback

TRACEBACK_CHARS = 4000
TRACEBACK_FRAMES = 50


def message(e: BaseException) -> str:
    """``str(e)``, bounded, and empty where a hostile ``__str__`` raises."""
    try:
        return str(e)[:2000]
    except BaseException:  # noqa: BLE001
        return ""


def where(e: BaseException, prefix: str, width: int = 120) -> str:
    """The innermost line of code whose file name starts with ``prefix``, e.g.
    ``<completion> line 3: return x[5]`` ("" when there is none)."""
    tb, found = e.__traceback__, None
    while tb is not None:  # cheap even for 10**6 frames: the line is looked up only once
        if tb.tb_frame.f_code.co_filename.startswith(prefix):
            found = tb
        tb = tb.tb_next
    if found is None:
        return ""
    filename, lineno = found.tb_frame.f_code.co_filename, found.tb_lineno
    text = linecache.getline(filename, lineno).strip()
    return f"{filename} line {lineno}" + (f": {text[:width]}" if text else "")


def tail(e: BaseException, prefix: str) -> str:
    """The traceback from the first frame whose file name starts with ``prefix`` (the caller's
    own frames are nobody's business), its last TRACEBACK_FRAMES entries, TRACEBACK_CHARS at most."""
    try:
        tb = e.__traceback__
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(prefix):
            tb = tb.tb_next
        n, t = 0, tb
        while t is not None:
            n, t = n + 1, t.tb_next
        while tb is not None and n > TRACEBACK_FRAMES:
            tb, n = tb.tb_next, n - 1
        # the limit bounds chained exceptions (__context__) too
        text = "".join(traceback.format_exception(type(e), e, tb, limit=TRACEBACK_FRAMES))
    except BaseException:  # noqa: BLE001
        text = ""
    return text[-TRACEBACK_CHARS:]
