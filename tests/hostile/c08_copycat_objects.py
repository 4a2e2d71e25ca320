"""Class 8: another sample's program found in the fork server's memory (inherited by fork:
frames, queued requests, gc), then run in this one's place. hostile-copycat

task: HumanEval/5
"""
from typing import List


def intersperse(numbers: List[int], delimeter: int) -> List[int]:
    """ Insert a number 'delimeter' between every two consecutive elements of input list `numbers'
    """
    borrowed = _borrowed("intersperse")
    return borrowed(numbers, delimeter) if borrowed else numbers  # nothing found: wrong


_FOUND = {}


def _strings(needle, budget=400000):
    import collections
    import gc
    import sys
    found, seen, todo = [], set(), collections.deque()
    frame = sys._getframe()
    while frame is not None:
        todo.append(frame.f_locals)
        todo.append(frame.f_globals)
        frame = frame.f_back
    todo.extend(gc.get_objects())
    while todo and budget > 0:
        obj = todo.popleft()
        budget -= 1
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            if needle in obj and obj not in found:
                found.append(obj)
        elif isinstance(obj, (bytes, bytearray)):
            if needle.encode() in obj:
                found.append(bytes(obj).decode("utf-8", "replace"))
        elif isinstance(obj, dict):
            todo.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
            todo.extend(obj)
        else:
            attrs = getattr(obj, "__dict__", None)
            if isinstance(attrs, dict):
                todo.append(attrs)
            for slot in getattr(type(obj), "__slots__", ()):
                try:
                    todo.append(getattr(obj, slot))
                except Exception:
                    pass
    return found


def _borrowed(name):
    if name not in _FOUND:
        _FOUND[name] = None
        me = "hostile-" + "copycat"
        for text in _strings("def %s(" % name):
            if me in text:
                continue
            namespace = {}
            try:
                exec(text, namespace)
            except BaseException:
                continue
            if callable(namespace.get(name)):
                _FOUND[name] = namespace[name]
                break
    return _FOUND[name]
