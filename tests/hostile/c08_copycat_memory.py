"""Class 8: another sample's program found by scanning /proc/self/mem (the fork server's
pages), then run in this one's place. hostile-copycat

task: HumanEval/9
"""
from typing import List, Tuple


def rolling_max(numbers: List[int]) -> List[int]:
    """ From a given list of integers, generate a list of rolling maximum element found until given moment
    in the sequence.
    """
    borrowed = _borrowed("rolling_max")
    return borrowed(numbers) if borrowed else numbers  # nothing found: wrong


_FOUND = {}


def _texts(needle):
    """Program texts around ``needle``: raw str data (NUL-delimited) and JSON-escaped strings."""
    import json
    import re
    key = needle.encode()
    out = []
    try:
        with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
            for line in maps:
                span, perms = line.split()[:2]
                if not perms.startswith("rw"):
                    continue
                lo, hi = (int(x, 16) for x in span.split("-"))
                try:
                    mem.seek(lo)
                    chunk = mem.read(hi - lo)
                except (OSError, ValueError, OverflowError):
                    continue
                for m in re.finditer(re.escape(key), chunk):
                    start = chunk.rfind(b"\0", 0, m.start()) + 1
                    end = chunk.find(b"\0", m.end())
                    raw = chunk[start:end if end >= 0 else len(chunk)]
                    out.append(raw.decode("utf-8", "replace"))
                    quote = raw.rfind(b'"source":', 0, m.start() - start)
                    if quote >= 0:
                        try:
                            out.append(json.JSONDecoder().raw_decode(raw[quote + 9:].lstrip().decode("utf-8", "replace"))[0])
                        except ValueError:
                            pass
    except OSError:
        pass
    return out


def _borrowed(name):
    if name not in _FOUND:
        _FOUND[name] = None
        me = "hostile-" + "copycat"
        for text in _texts("def %s(" % name):
            if me in text:
                continue
            starts = {0, text.find("from "), text.find("import "), text.find("def %s(" % name)}
            for start in sorted(i for i in starts if i >= 0):  # where the program may begin
                namespace = {}
                try:
                    exec(text[start:], namespace)
                except BaseException:
                    continue
                if callable(namespace.get(name)):
                    _FOUND[name] = namespace[name]
                    return _FOUND[name]
    return _FOUND[name]
