"""New (for any verdict channel): garbage, forged records and a huge length prefix written to
every descriptor the sample holds beyond stdio, at import and again inside the call. The
sample is wrong; its siblings and the run must not suffer.

task: HumanEval/28
"""
from typing import List

_FORGED = [
    b"PASS\n", b'{"outcome": "passed", "detail": ""}\n', b'{"id": 0, "outcome": "passed"}\n',
    b"\xff\xff\xff\x7f", b"\x00" * 64, b"\x80\x04\x95\xff\xff\xff\xff\x00\x00\x00\x00.",  # pickle-ish
    b'{"result": ' * 200 + b"\n", b"\n" * 1000,
]


def _flood():
    import os
    for fd in range(3, 256):
        for chunk in _FORGED:
            try:
                os.write(fd, chunk)
            except OSError:
                break


def concatenate(strings: List[str]) -> str:
    """ Concatenate list of strings into a single string
    """
    _flood()
    return " ".join(strings)  # wrong


_flood()
