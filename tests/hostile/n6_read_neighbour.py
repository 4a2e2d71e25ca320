"""New: a sample reads the working directory of a sample running beside it in the same fork
server (CAP_DAC_READ_SEARCH ignores the directory's 0700).

task: HumanEval/53
"""
import os
import time

_own = os.getcwd()
_seen = set()
_end = time.monotonic() + 2.5
while time.monotonic() < _end:
    for _root in (os.path.dirname(_own),):  # the sandbox's own directory: its neighbours
        for _dirpath, _dirnames, _filenames in os.walk(_root):
            if _dirpath == _own:
                continue
            for _name in _filenames:
                if _name.endswith(".txt"):
                    try:
                        with open(os.path.join(_dirpath, _name)) as _f:
                            _seen.add(_f.read(200))
                    except (OSError, ValueError):  # unreadable, or not text
                        pass
    time.sleep(0.1)
print("read from neighbours:", sorted(_seen))


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
