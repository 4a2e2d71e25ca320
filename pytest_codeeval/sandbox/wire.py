"""Plain data across the judge/candidate boundary: a compact binary format that is safe to decode.

The trusted judge decodes bytes that an untrusted program wrote, so ``loads`` never executes
anything (no pickle, marshal or eval), bounds its recursion by ``max_depth``, does work linear in
the input, and raises :class:`WireError` -- and only that -- for every malformed input. Standard
library only: the candidate side imports this module into a bare ``python -I`` interpreter.

Format (little-endian; u32/i64 unsigned/signed 4/8-byte integers, f64 an IEEE double's raw bits)::

    value := 'N' | 'T' | 'F' | 'E'                 None, True, False, Ellipsis
           | 'i' i64                               int that fits in 64 bits
           | 'I' u32:n byte*n                      any int: n-byte two's complement
           | 'f' f64 | 'c' f64 f64                 float, complex (bit-exact: nan payloads, -0.0)
           | 's' u32:n byte*n                      str: UTF-8, lone surrogates passed through
           | 'b' u32:n byte*n | 'a' u32:n byte*n   bytes, bytearray
           | C u32:n value*n                       C: 'l' list, 't' tuple, 'S' set, 'z' frozenset
           | 'd' u32:n (value value)*n             dict: key, value, in insertion order
           | 'P' C 'i' u32:n i64*n                 homogeneous C of 64-bit ints (fast path)
           | 'P' C 'f' u32:n f64*n                 homogeneous C of floats (fast path)
           | 'P' C 's' u32:n u32*n u32:m byte*m    homogeneous C of strs (fast path): the lengths
                                                   in code points, then all of them joined, UTF-8
           | 'r' int int int                       range(start, stop, step); int := 'i' or 'I' value
           | 'R' int                               Ref(id)
           | 'M' value value                       Materialized: kind (a str), items (a tuple)

A message is one value and nothing after it. Containers nest at most ``max_depth`` deep (a
Materialized counts as a level); shared objects are encoded once per occurrence (no aliasing),
which ``max_bytes`` bounds.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate, islice, pairwise

__all__ = ["Materialized", "Ref", "WireError", "dumps", "loads"]


class WireError(ValueError):
    """A value that cannot be encoded, or bytes that are not a valid encoding."""


@dataclass(frozen=True)
class Ref:
    """An opaque reference to an object that lives on the other side (the sender keeps a table)."""

    id: int


class Materialized:
    """What an iterator/generator result becomes on the receiving side: an iterator over the
    items the sender drew from it. Equal only to itself, as a generator is; ``kind`` is the
    original type's name and ``items`` the tuple of all items drawn."""

    __slots__ = ("kind", "items", "_next")

    def __init__(self, kind: str, items: Iterable[object]) -> None:
        self.kind: str = str.__str__(kind)  # an exact str even if handed a str subclass
        self.items: tuple[object, ...] = tuple(items)
        self._next = 0

    def __iter__(self) -> Materialized:
        return self

    def __next__(self) -> object:
        i = self._next
        if i >= len(self.items):
            raise StopIteration
        self._next = i + 1
        return self.items[i]

    def __repr__(self) -> str:
        return f"<{self.kind}: {len(self.items)} items>"


(NONE, TRUE, FALSE, ELLIPSIS, INT, BIG, FLT, CPX, STR, BYT, BARR,
 LST, TUP, SET, FSET, DCT, PACK, RNG, REF, MAT) = b"NTFEiIfcsbaltSzdPrRM"
_SEQ_TAG = {list: LST, tuple: TUP, set: SET, frozenset: FSET}
_EXACT = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray, list, tuple,
                    dict, set, frozenset, type(...), range, Ref, Materialized})
_NUMPY_OK = (bool, int, float, complex, str, bytes)
_TAG_I64 = struct.Struct("<Bq").pack
_TAG_F64 = struct.Struct("<Bd").pack
_TAG_C128 = struct.Struct("<Bdd").pack
_TAG_LEN = struct.Struct("<BI").pack
_PACK_HDR = struct.Struct("<BBBI").pack
_U32P = struct.Struct("<I").pack
_U32 = struct.Struct("<I").unpack_from
_I64 = struct.Struct("<q").unpack_from
_F64 = struct.Struct("<d").unpack_from
_C128 = struct.Struct("<dd").unpack_from
_U32CODE = "I" if array("I").itemsize == 4 else "L"
_SWAP = sys.byteorder == "big"  # arrays are native-endian; the format is little-endian
_LOW, _HIGH = -(1 << 63), 1 << 63
_PACK_MIN = 8  # below this, checking homogeneity costs more than the fast path saves
_MAX_SHARED_HASH = 32  # keys of one set/dict sharing one hash value (see _collisions)
_ALL = slice(None)
_NO = object()


def dumps(obj: object, *, default: Callable[[object], object] | None = None,
          max_bytes: int = 64 << 20, max_depth: int = 100, max_iter_items: int = 1_000_000) -> bytes:
    """Encode ``obj``: plain data of the types listed in the module docstring.

    Subclasses of those types encode as their base type's value, numpy scalars as their
    ``.item()``, iterators as a :class:`Materialized` of at most ``max_iter_items`` items; for
    anything else ``default(obj)`` is encoded instead (typically a :class:`Ref`), once. Raises
    WireError for what cannot be encoded, nesting deeper than ``max_depth`` (cycles included) or
    output over ``max_bytes`` (capped at 2**32 - 1: lengths are u32), checked before large
    chunks are built. Exceptions raised while drawing an iterator, or by ``default``, propagate.
    ``max_depth`` must stay well below the interpreter's recursion limit.
    """
    limit = min(max_bytes, 0xFFFFFFFF)
    buf = bytearray()
    put = buf.extend  # takes bytes and any other buffer (an array's bytes) directly

    def room(n: int) -> None:
        if len(buf) + n > limit:
            raise WireError(f"encoding is larger than max_bytes={max_bytes}")

    def too_deep() -> WireError:
        return WireError(f"nested deeper than max_depth={max_depth} (or cyclic)")

    def put_int(x: int) -> None:
        if _LOW <= x < _HIGH:
            put(_TAG_I64(INT, x))
        else:  # linear both ways, unlike a decimal string
            n = (x.bit_length() + 8) >> 3  # +1 bit for the sign
            room(n)
            put(_TAG_LEN(BIG, n))
            put(x.to_bytes(n, "little", signed=True))

    def pack(x: list | tuple | set | frozenset, tag: int, n: int) -> bool:
        kinds = set(map(type, x))  # exact types, at C speed: bools and subclasses stay out
        if len(kinds) != 1:
            return False
        kind = kinds.pop()
        if kind is int or kind is float:
            room(8 * n)
            try:
                a = array("q" if kind is int else "d", x)
            except OverflowError:  # an int beyond 64 bits: the generic path
                return False
            if _SWAP:
                a.byteswap()
            put(_PACK_HDR(PACK, tag, INT if kind is int else FLT, n))
            put(a)
            return True
        if kind is str:
            seq = x if type(x) is list or type(x) is tuple else list(x)  # one fixed order
            room(4 * n + sum(map(len, seq)))  # before joining: aliasing could make it huge
            lens = array(_U32CODE, map(len, seq))
            blob = "".join(seq).encode("utf-8", "surrogatepass")
            room(4 * n + 4 + len(blob))
            if _SWAP:
                lens.byteswap()
            put(_PACK_HDR(PACK, tag, STR, n))
            put(lens)
            put(_U32P(len(blob)))
            put(blob)
            return True
        return False

    def enc(x: object, depth: int) -> None:
        if len(buf) > limit:  # a value's own chunk is small, or checked by room() first
            raise WireError(f"encoding is larger than max_bytes={max_bytes}")
        t = type(x)
        if t is int:
            put_int(x)
        elif t is str:
            room(len(x))  # UTF-8 takes at least a byte per code point
            b = x.encode("utf-8", "surrogatepass")
            room(5 + len(b))
            put(_TAG_LEN(STR, len(b)))
            put(b)
        elif t is float:
            put(_TAG_F64(FLT, x))
        elif t in _SEQ_TAG:
            if depth >= max_depth:
                raise too_deep()
            n = len(x)
            tag = _SEQ_TAG[t]
            if n < _PACK_MIN or not pack(x, tag, n):
                put(_TAG_LEN(tag, n))
                for item in x:
                    enc(item, depth + 1)
        elif t is dict:
            if depth >= max_depth:
                raise too_deep()
            put(_TAG_LEN(DCT, len(x)))
            for k, v in x.items():
                enc(k, depth + 1)
                enc(v, depth + 1)
        elif x is None:
            put(b"N")
        elif t is bool:
            put(b"T" if x else b"F")
        elif t is bytes or t is bytearray:
            room(5 + len(x))
            put(_TAG_LEN(BYT if t is bytes else BARR, len(x)))
            put(x)
        elif t is complex:
            put(_TAG_C128(CPX, x.real, x.imag))
        elif x is ...:
            put(b"E")
        elif t is range:
            put(b"r")
            put_int(x.start)
            put_int(x.stop)
            put_int(x.step)
        elif t is Ref:
            if type(x.id) is not int:
                raise WireError(f"Ref.id must be an int, not {type(x.id).__name__}")
            put(b"R")
            put_int(x.id)
        elif t is Materialized:
            if depth >= max_depth:
                raise too_deep()
            put(b"M")
            enc(x.kind, depth + 1)
            enc(x.items, depth + 1)
        else:
            y = _plain(x, t, max_iter_items)
            if y is _NO:
                if default is None:
                    raise WireError(f"cannot encode a {t.__name__!r} object")
                r = default(x)
                y = r if type(r) in _EXACT else _plain(r, type(r), max_iter_items)
                if y is _NO:
                    raise WireError(f"default() returned a {type(r).__name__!r} object, which cannot be encoded")
            enc(y, depth)  # y has an exact supported type: no second trip through here

    enc(obj, 0)
    if len(buf) > limit:
        raise WireError(f"encoding is larger than max_bytes={max_bytes}")
    return bytes(buf)


def _plain(x: object, t: type, max_items: int) -> object:
    """The exact-typed plain value that stands for ``x``, or ``_NO``.

    Subclass values are read through the base type's own slots (``int.__index__(x)``,
    ``list.__getitem__(x, slice(None))``, ``set(x)``'s C-level merge, ...): calling the base class's
    method directly bypasses any override of ``__iter__``, ``__eq__``, ``__index__``, ``__str__``.
    ``issubclass(type(x), ...)`` rather than ``isinstance`` because ``__class__`` can lie.
    """
    if issubclass(t, Materialized):
        return Materialized(x.kind, x.items)
    if issubclass(t, Ref):
        return Ref(x.id)
    if any(c.__name__ == "generic" and c.__module__ == "numpy" for c in t.__mro__):
        v = x.item()  # a numpy scalar, without importing numpy; arrays are not numpy.generic
        return v if type(v) in _NUMPY_OK else _NO
    if issubclass(t, int):
        return int.__index__(x)  # long_long: a copy as an exact int
    if issubclass(t, float):
        return float.__float__(x)
    if issubclass(t, complex):  # member descriptors read the C fields; complex.__complex__ is 3.11+
        return complex(complex.real.__get__(x), complex.imag.__get__(x))
    if issubclass(t, str):
        return str.__str__(x)
    if issubclass(t, bytes):
        return bytes.__getitem__(x, _ALL)
    if issubclass(t, bytearray):
        return bytearray.__getitem__(x, _ALL)
    if issubclass(t, list):
        return list.__getitem__(x, _ALL)
    if issubclass(t, tuple):
        return tuple.__getitem__(x, _ALL)
    if issubclass(t, OrderedDict):  # its order is its linked list's, which dict.items() ignores
        return dict(OrderedDict.items(x))
    if issubclass(t, dict):
        return dict(dict.items(x))
    if issubclass(t, (set, frozenset)):  # set_merge copies entries without calling x's methods
        return set(x) if issubclass(t, set) else frozenset(x)
    if issubclass(t, Iterator):
        items = list(islice(x, max_items + 1))
        if len(items) > max_items:
            raise WireError(f"a {t.__name__!r} iterator yields more than {max_items} items")
        return Materialized(t.__name__, items)
    return _NO


def _collisions(keys: list[object], colliding: set[int]) -> bool:
    """Check that building a set or dict of ``keys`` stays linear; return whether hashes repeat.

    CPython compares a new key only with stored keys of the same hash. Equal hashes occur
    naturally (hash(-1) == hash(-2), hence tuples of them) but a sender can make thousands of
    keys share one (k * (2**61 - 1)): quadratic. So at most _MAX_SHARED_HASH keys per hash, and
    keys that share one must not contain a frozenset that itself has repeated hashes (its ``id``
    in ``colliding``): nesting those makes each comparison as costly as a quadratic build.
    """
    if len(keys) < 2:
        return False
    try:
        hashes = list(map(hash, keys))
    except TypeError as e:
        raise WireError(f"unhashable set member or dict key: {e}") from None
    if len(set(hashes)) == len(hashes):
        return False
    counts = Counter(hashes)
    if max(counts.values()) > _MAX_SHARED_HASH:
        raise WireError(f"more than {_MAX_SHARED_HASH} set members or dict keys share one hash")
    if colliding:  # walk the keys that share a hash, iteratively
        stack = [k for k, h in zip(keys, hashes) if counts[h] > 1]
        while stack:
            x = stack.pop()
            if type(x) is tuple:
                stack.extend(x)
            elif type(x) is frozenset:
                if id(x) in colliding:
                    raise WireError("nested set members with shared hashes")
                stack.extend(x)
    return True


def loads(data: bytes, *, ref: Callable[[int], object] | None = None,
          max_depth: int = 100, max_int_digits: int | None = None) -> object:
    """Decode one value written by :func:`dumps`; raise WireError for anything else.

    A Ref decodes to ``ref(id)`` when ``ref`` is given (its exceptions become WireError), else to
    ``Ref(id)``. ``max_int_digits`` optionally bounds ints to about that many decimal digits;
    decoding is linear regardless, as ints travel in binary.
    """
    if type(data) is not bytes:
        data = bytes(data)  # a private copy: nobody can change it mid-decode
    end = len(data)
    pos = 0
    colliding: set[int] = set()  # ids of decoded frozensets whose members share hashes

    def chunk(n: int) -> bytes:
        nonlocal pos
        if n > end - pos:
            raise WireError(f"truncated: {n} bytes declared at offset {pos}, {end - pos} left")
        pos += n
        return data[pos - n:pos]

    def count(size: int) -> int:
        """A u32 item count; each item takes at least ``size`` bytes, so a huge count with
        little data behind it fails here, before anything is allocated for it."""
        nonlocal pos
        n = _U32(data, pos)[0]
        pos += 4
        if n * size > end - pos:
            raise WireError(f"truncated: {n} items declared at offset {pos - 4}, {end - pos} bytes left")
        return n

    def integer() -> int:
        nonlocal pos
        t = data[pos]
        pos += 1
        if t == INT:
            pos += 8
            return _I64(data, pos - 8)[0]
        if t != BIG:
            raise WireError(f"expected an int at offset {pos - 1}")
        v = int.from_bytes(chunk(count(1)), "little", signed=True)
        if max_int_digits is not None and v.bit_length() > max_int_digits * 3.3219280948873626 + 4:
            raise WireError(f"an int of more than max_int_digits={max_int_digits} digits")
        return v

    def build(tag: int, items: list[object]) -> object:
        if tag == LST:
            return items
        if tag == TUP:
            return tuple(items)
        shared = _collisions(items, colliding)
        if tag == SET:
            return set(items)
        fs = frozenset(items)
        if shared:
            colliding.add(id(fs))  # fs lives in the result, so its id stays unique
        return fs

    def value(depth: int) -> object:
        nonlocal pos
        t = data[pos]
        pos += 1
        if t == INT:
            pos += 8
            return _I64(data, pos - 8)[0]
        if t == STR:
            return chunk(count(1)).decode("utf-8", "surrogatepass")
        if t == FLT:
            pos += 8
            return _F64(data, pos - 8)[0]
        if t in b"ltSzdP":  # list, tuple, set, frozenset, dict, packed
            if depth >= max_depth:
                raise WireError(f"nested deeper than max_depth={max_depth}")
            if t == DCT:
                keys, vals = [], []
                for _ in range(count(2)):
                    keys.append(value(depth + 1))
                    vals.append(value(depth + 1))
                _collisions(keys, colliding)
                return dict(zip(keys, vals))
            if t != PACK:
                return build(t, [value(depth + 1) for _ in range(count(1))])
            tag, kind = data[pos], data[pos + 1]
            pos += 2
            if tag not in b"ltSz":
                raise WireError(f"unknown container tag {tag} at offset {pos - 2}")
            if kind == INT or kind == FLT:
                a = array("q" if kind == INT else "d")
                a.frombytes(chunk(8 * count(8)))
                if _SWAP:
                    a.byteswap()
                return build(tag, a.tolist())
            if kind != STR:
                raise WireError(f"unknown packed kind {kind} at offset {pos - 1}")
            lens = array(_U32CODE)
            lens.frombytes(chunk(4 * count(4)))
            if _SWAP:
                lens.byteswap()
            s = chunk(count(1)).decode("utf-8", "surrogatepass")
            offsets = list(accumulate(lens, initial=0))
            if offsets[-1] != len(s):
                raise WireError("packed str lengths do not add up")
            return build(tag, [s[i:j] for i, j in pairwise(offsets)])
        if t == BIG:
            pos -= 1
            return integer()
        if t == NONE:
            return None
        if t == TRUE or t == FALSE:
            return t == TRUE
        if t == BYT or t == BARR:
            b = chunk(count(1))
            return b if t == BYT else bytearray(b)
        if t == CPX:
            pos += 16
            return complex(*_C128(data, pos - 16))
        if t == ELLIPSIS:
            return ...
        if t == RNG:
            start, stop, step = integer(), integer(), integer()
            if step == 0:
                raise WireError("range step is zero")
            return range(start, stop, step)
        if t == REF:
            i = integer()
            if ref is None:
                return Ref(i)
            try:
                return ref(i)
            except WireError:
                raise
            except Exception as e:
                raise WireError(f"ref({i}) failed: {e!r}") from e
        if t == MAT:
            if depth >= max_depth:
                raise WireError(f"nested deeper than max_depth={max_depth}")
            kind, items = value(depth + 1), value(depth + 1)
            if type(kind) is not str or type(items) is not tuple:
                raise WireError("malformed Materialized")
            return Materialized(kind, items)
        raise WireError(f"unknown tag {t} at offset {pos - 1}")

    try:
        result = value(0)
    except WireError:
        raise
    except (IndexError, struct.error):  # data[pos] or an unpack past the end
        raise WireError("truncated data") from None
    except RecursionError:  # only if max_depth exceeds what the interpreter allows
        raise WireError("nested too deeply for this interpreter") from None
    except Exception as e:  # a backstop: the contract is WireError, whatever the bytes
        raise WireError(f"malformed data: {e!r}") from e
    if pos != end:
        raise WireError(f"{end - pos} trailing bytes after the value")
    return result
