"""New (class 7's cousin): the generations file under evaluation is readable; the candidate
finds its siblings' completions in it, keeps one that passes the docstring's examples, and
runs it in its own place. hostile-copycat

task: HumanEval/29
"""
from typing import List


def filter_by_prefix(strings: List[str], prefix: str) -> List[str]:
    """ Filter an input list of strings only for ones that start with a given prefix.
    >>> filter_by_prefix([], 'a')
    []
    >>> filter_by_prefix(['abc', 'bcd', 'cde', 'array'], 'a')
    ['abc', 'array']
    """
    borrowed = _borrowed()
    return borrowed(strings, prefix) if borrowed else strings  # nothing found: wrong


_FOUND = []
_ROOTS = ["__GENERATIONS_HINT__", "/tmp", "/root", "/home", "/work"]
_PROMPT_HEAD = "from typing import List\n\n\ndef filter_by_prefix(strings: List[str], prefix: str) -> List[str]:\n"


def _works(fn):
    try:
        return fn([], "a") == [] and fn(["abc", "bcd", "cde", "array"], "a") == ["abc", "array"]
    except Exception:
        return False


def _borrowed():
    import json
    import os
    import time
    if _FOUND:
        return _FOUND[0]
    _FOUND.append(None)
    deadline = time.monotonic() + 2.0
    for root in _ROOTS:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            if time.monotonic() > deadline:
                return None
            for filename in filenames:
                if not filename.endswith(".jsonl"):
                    continue
                try:
                    with open(os.path.join(dirpath, filename)) as f:
                        rows = [json.loads(line) for line in f if "HumanEval/29" in line]
                except Exception:
                    continue
                for row in rows:
                    text = row.get("solution") or _PROMPT_HEAD + row.get("completion", "")
                    if "hostile-" + "copycat" in text:
                        continue
                    namespace = {}
                    try:
                        exec(text, namespace)
                    except BaseException:
                        continue
                    fn = namespace.get("filter_by_prefix")
                    if callable(fn) and _works(fn):
                        _FOUND[0] = fn
                        return fn
    return None
