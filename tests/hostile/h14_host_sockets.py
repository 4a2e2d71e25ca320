"""Class 14 (and the TCP case, held): send a marker to listeners on the host: a filesystem
UNIX socket, an abstract UNIX socket, TCP on 127.0.0.1.

task: HumanEval/53
"""
import socket

for _family, _address in __ADDRESSES__:
    try:
        _s = socket.socket(_family, socket.SOCK_STREAM)
        _s.settimeout(1.0)
        _s.connect(_address)
        _s.sendall(b"__MARKER__")
        _s.close()
        print("reached", repr(_address))
    except OSError as e:
        print("refused", repr(_address), e)


def add(x: int, y: int):
    """Add two numbers x and y
    """
    return x - y  # wrong
