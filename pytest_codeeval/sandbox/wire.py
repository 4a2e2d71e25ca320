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
           | 'P' C 's' u32:n u32:m byte*m          homogeneous C of strs (fast path): the n strs
                                                   joined by NUL (none holds one), as UTF-8
           | 'r' int int int                       range(start, stop, step); int := 'i' or 'I' value
           | 'R' int                               Ref(id)
           | 'M' str value                         Materialized: kind (an 's' value), items (a tuple)

A message is one value and nothing after it. Containers nest at most ``max_depth`` deep (a
Materialized counts as one); an object that occurs twice is encoded twice (aliasing is not kept,
and ``max_bytes`` bounds what repetition can cost).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

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
    original type's name, ``items`` the tuple of all the items drawn."""

    __slots__ = ("kind", "items", "_rest")

    def __init__(self, kind: str, items: Iterable[object]) -> None:
        self.kind: str = str.__str__(kind)  # an exact str even if handed a str subclass
        self.items: tuple[object, ...] = tuple(items)
        self._rest = iter(self.items)

    def __iter__(self) -> Materialized:
        return self

    def __next__(self) -> object:
        return next(self._rest)

    def __repr__(self) -> str:
        return f"<{self.kind}: {len(self.items)} items>"


(INT, BIG, FLT, CPX, STR, BYT, BARR, LST, TUP, SET, FSET, DCT, PACK, RNG, REF, MAT) = b"iIfcsbaltSzdPrRM"
_SEQ_TAG = {list: LST, tuple: TUP, set: SET, frozenset: FSET}
_BLOB_TAG = {str: STR, bytes: BYT, bytearray: BARR}
_CONST = {None: b"N", True: b"T", False: b"F", ...: b"E"}  # looked up only after a type check
_CONST_TYPES = (type(None), bool, type(...))
_DECODED_CONST = {ord(v): k for k, v in _CONST.items()}
_NESTED = frozenset({list, tuple, set, frozenset, dict, Materialized})
_EXACT = _NESTED | {*_CONST_TYPES, int, float, complex, str, bytes, bytearray, range, Ref}
_NUMPY_OK = (bool, int, float, complex, str, bytes)
_TAG_I64, _TAG_F64, _TAG_C128 = (struct.Struct(f).pack for f in ("<Bq", "<Bd", "<Bdd"))
_TAG_LEN, _PACK_HDR, _PACK_STR = (struct.Struct(f).pack for f in ("<BI", "<BBBI", "<BBBII"))
_U32, _I64, _F64, _C128 = (struct.Struct(f).unpack_from for f in ("<I", "<q", "<d", "<dd"))
_SWAP = sys.byteorder == "big"  # arrays are native-endian; the format is little-endian
_LOW, _HIGH = -(1 << 63), 1 << 63
_PACK_MIN = 8  # below this, checking homogeneity costs more than the fast path saves
_MAX_FACTOR = 64  # how many times over its size building a set/dict may cost (see _collisions)
_TOO_BIG = "the encoding exceeds max_bytes"
_NO = object()
_Costs = dict[int, tuple[int, frozenset]]  # id -> (factor, the frozenset): see _collisions


def dumps(obj: object, *, default: Callable[[object], object] | None = None,
          max_bytes: int = 64 << 20, max_depth: int = 100, max_iter_items: int = 1_000_000) -> bytes:
    """Encode ``obj``: plain data of the types listed in the module docstring.

    Subclasses of those encode as their base type's value, numpy scalars as their ``.item()``,
    iterators as a :class:`Materialized` of at most ``max_iter_items`` items; anything else as
    ``default(obj)`` (typically a :class:`Ref`), called once. WireError for what cannot be
    encoded, nesting deeper than ``max_depth`` (cycles too: keep it well below the recursion
    limit), or output over ``max_bytes`` (at most 2**32 - 1), found before a large chunk is
    built. Exceptions raised by ``default`` or while drawing an iterator propagate.
    """
    limit = min(max_bytes, 0xFFFFFFFF)
    buf = bytearray()
    put = buf.extend  # takes any buffer

    def enc(x: object, depth: int) -> None:
        if len(buf) > limit:  # each value's own chunk is small, or checked before it is built
            raise WireError(_TOO_BIG)
        t = type(x)
        if depth >= max_depth and t in _NESTED:
            raise WireError(f"nested deeper than max_depth={max_depth} (or cyclic)")
        if t is int:
            put(_TAG_I64(INT, x) if _LOW <= x < _HIGH else _int(x, limit - len(buf)))
        elif t is str or t is bytes or t is bytearray:
            if len(x) > limit - len(buf):  # UTF-8 takes at least a byte per code point
                raise WireError(_TOO_BIG)
            b = x.encode("utf-8", "surrogatepass") if t is str else x
            put(_TAG_LEN(_BLOB_TAG[t], len(b)))
            put(b)
        elif t is float:
            put(_TAG_F64(FLT, x))
        elif t in _SEQ_TAG:
            packed = _pack(x, _SEQ_TAG[t], limit - len(buf)) if len(x) >= _PACK_MIN else None
            if packed is not None:
                put(packed)
            else:
                put(_TAG_LEN(_SEQ_TAG[t], len(x)))
                for item in x:
                    enc(item, depth + 1)
        elif t is dict:
            put(_TAG_LEN(DCT, len(x)))
            for k, v in x.items():
                enc(k, depth + 1)
                enc(v, depth + 1)
        elif t in _CONST_TYPES:
            put(_CONST[x])
        elif t is complex:
            put(_TAG_C128(CPX, x.real, x.imag))
        elif t is range:
            room = limit - len(buf)
            put(b"r" + _int(x.start, room) + _int(x.stop, room) + _int(x.step, room))
        elif t is Ref:
            if type(x.id) is not int:
                raise WireError(f"Ref.id must be an int, not {type(x.id).__name__}")
            put(b"R" + _int(x.id, limit - len(buf)))
        elif t is Materialized:
            put(b"M")
            enc(x.kind, depth + 1)
            enc(tuple(x.items), depth + 1)
        else:
            y = _plain(x, t, max_iter_items)
            if y is _NO:
                if default is None:
                    raise WireError(f"cannot encode a {t.__name__!r} object")
                r = default(x)
                y = r if type(r) in _EXACT else _plain(r, type(r), max_iter_items)
                if y is _NO:
                    raise WireError(f"default() returned a {type(r).__name__!r} object, which cannot be encoded")
            enc(y, depth)  # y has an exact supported type: it never comes back to this branch

    enc(obj, 0)
    if len(buf) > limit:
        raise WireError(_TOO_BIG)
    return bytes(buf)


def _int(x: int, room: int) -> bytes:
    """An 'i' or 'I' value: binary, so linear both ways (a decimal string is quadratic)."""
    if _LOW <= x < _HIGH:
        return _TAG_I64(INT, x)
    n = (x.bit_length() + 8) >> 3  # one more bit for the sign
    if n + 5 > room:
        raise WireError(_TOO_BIG)
    return _TAG_LEN(BIG, n) + x.to_bytes(n, "little", signed=True)


def _pack(x: list | tuple | set | frozenset, tag: int, room: int) -> bytes | None:
    """The 'P' encoding of ``x`` if its items are all ints within 64 bits, all floats, or all
    strs without NUL; else None."""
    kinds = set(map(type, x))  # exact types, at C speed: bools and subclasses stay out
    kind = kinds.pop() if len(kinds) == 1 else None
    n = len(x)
    if kind is int or kind is float:
        if 8 * n + 7 > room:
            raise WireError(_TOO_BIG)
        try:
            a = array("q" if kind is int else "d", x)
        except OverflowError:  # an int beyond 64 bits: the generic path
            return None
        if _SWAP:
            a.byteswap()
        return _PACK_HDR(PACK, tag, INT if kind is int else FLT, n) + a.tobytes()
    if kind is not str:
        return None
    if sum(map(len, x)) + n > room:  # before joining: repeated big strs could make it huge
        raise WireError(_TOO_BIG)
    joined = "\0".join(x)
    if joined.count("\0") != n - 1:
        return None
    blob = joined.encode("utf-8", "surrogatepass")
    if len(blob) + 11 > room:
        raise WireError(_TOO_BIG)
    return _PACK_STR(PACK, tag, STR, n, len(blob)) + blob


def _plain(x: object, t: type, max_items: int) -> object:
    """The exact-typed plain value that stands for ``x``, or ``_NO``.

    A subclass's value is read through the base type's own C slot (``int.__index__(x)``,
    ``list.__getitem__(x, slice(None))``, ``set(x)``'s merge of the entries, ...), which no override
    of ``__iter__``, ``__index__``, ``__str__``... can intercept. ``issubclass(type(x), ...)``
    rather than ``isinstance``, which trusts ``__class__``.
    """
    if issubclass(t, Materialized):
        return Materialized(x.kind, x.items)
    if issubclass(t, Ref):
        return Ref(x.id)
    if any(c.__name__ == "generic" and c.__module__ == "numpy" for c in t.__mro__):
        v = x.item()  # a numpy scalar, without importing numpy (arrays are not numpy.generic)
        return v if type(v) in _NUMPY_OK else _NO
    if issubclass(t, int):
        return int.__index__(x)  # long_long(): a copy as an exact int
    if issubclass(t, float):
        return float.__float__(x)
    if issubclass(t, complex):  # member descriptors read the C fields; __complex__ is 3.11+
        return complex(complex.real.__get__(x), complex.imag.__get__(x))
    if issubclass(t, str):
        return str.__str__(x)
    for base in (bytes, bytearray, list, tuple):  # a full slice copies into the exact base type
        if issubclass(t, base):
            return base.__getitem__(x, slice(None))
    if issubclass(t, dict):  # OrderedDict's order is its linked list's, which dict.items() ignores
        return dict((OrderedDict if issubclass(t, OrderedDict) else dict).items(x))
    if issubclass(t, (set, frozenset)):  # the C-level merge never calls x's methods
        return set(x) if issubclass(t, set) else frozenset(x)
    if issubclass(t, Iterator):
        items = list(islice(x, max_items + 1))
        if len(items) > max_items:
            raise WireError(f"a {t.__name__!r} iterator yields more than {max_items} items")
        return Materialized(t.__name__, items)
    return _NO


def _cost(x: object, costs: _Costs) -> int:
    """How many times over its size comparing ``x`` with a key of the same hash can cost."""
    worst, stack = 1, [x]
    while stack:  # iterative; stops at frozensets, whose factor was recorded when decoded
        y = stack.pop()
        if type(y) is tuple:
            stack.extend(y)
        elif type(y) is frozenset:
            worst = max(worst, costs.get(id(y), (1,))[0])
    return worst


def _collisions(keys: list[object], costs: _Costs) -> int:
    """Check that building a set or dict of ``keys`` stays linear; return its comparison factor.

    CPython compares a new key only with the stored keys of the same hash. Equal hashes occur
    naturally (hash(-1) == hash(-2), hence tuples of them) but a sender can make thousands of
    keys share one (k * (2**61 - 1)): a quadratic build. Comparing two frozensets whose members
    share hashes costs up to that many times their size, and nesting multiplies the factors, so
    the product along any nesting path (``costs``: decoded frozenset id -> factor) is bounded.
    """
    try:
        if len(keys) < 2 and not costs:  # nothing to compare (kwargs are mostly {})
            list(map(hash, keys))  # still: an unhashable key is refused
            return 1
        hashes = list(map(hash, keys))
    except TypeError as e:
        raise WireError(f"unhashable set member or dict key: {e}") from None
    # hashes are ints below 2**61, each its own hash: this set takes linear time
    counts = Counter(hashes) if len(set(hashes)) < len(hashes) else None
    if not costs:  # no costly frozenset decoded so far: the common, C-speed case
        factor = max(counts.values()) if counts else 1
    else:
        factor = max(((counts[h] if counts else 1) * _cost(k, costs) for k, h in zip(keys, hashes)), default=1)
    if factor > _MAX_FACTOR:
        raise WireError(f"set members or dict keys share hashes {factor}-fold (at most {_MAX_FACTOR})")
    return factor


def _build(tag: int, items: list[object], costs: _Costs) -> object:
    if tag == LST or tag == TUP:
        return items if tag == LST else tuple(items)
    factor = _collisions(items, costs)
    if tag == SET:
        return set(items)
    fs = frozenset(items)
    if factor > 1:
        costs[id(fs)] = (factor, fs)  # pinned: a duplicate dropped from a set must keep its id
    return fs


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
    costs: _Costs = {}  # the decoded frozensets whose members share hashes
    scalar = max_depth + 1  # value(scalar) refuses containers, Refs and ranges

    def count(size: int) -> int:  # a u32 count of items of at least ``size`` bytes each
        nonlocal pos
        n = _U32(data, pos)[0]
        pos += 4
        if n * size > end - pos:  # a huge count with little data behind it fails before any work
            raise WireError(f"truncated: {n} items declared at offset {pos - 4}, {end - pos} bytes left")
        return n

    def value(depth: int) -> object:
        nonlocal pos
        t = data[pos]
        pos += 1
        if t == INT:
            pos += 8
            return _I64(data, pos - 8)[0]
        if t == STR or t == BYT or t == BARR or t == BIG:
            n = count(1)
            pos += n
            b = data[pos - n:pos]
            if t != BIG:
                return b.decode("utf-8", "surrogatepass") if t == STR else b if t == BYT else bytearray(b)
            v = int.from_bytes(b, "little", signed=True)
            if max_int_digits is not None and v.bit_length() > max_int_digits * 3.3219280948873626 + 4:
                raise WireError(f"an int of more than max_int_digits={max_int_digits} digits")
            return v
        if t == FLT:
            pos += 8
            return _F64(data, pos - 8)[0]
        if t in b"ltSzdPM":
            if depth >= max_depth:
                raise WireError(f"nested deeper than max_depth={max_depth}")
            if t in b"ltSzd":  # loops, not comprehensions: one frame per level, not two
                items: list[object] = []
                for _ in range(2 * count(2) if t == DCT else count(1)):
                    items.append(value(depth + 1))
                if t != DCT:
                    return _build(t, items, costs)
                keys = items[::2]
                _collisions(keys, costs)
                return dict(zip(keys, items[1::2]))
            if t == MAT:
                kind, items = value(scalar), value(depth + 1)
                if type(kind) is not str or type(items) is not tuple:
                    raise WireError("malformed Materialized")
                return Materialized(kind, items)
            tag, kind = data[pos], data[pos + 1]
            pos += 2
            if tag not in b"ltSz" or kind not in b"ifs":
                raise WireError(f"malformed packed container at offset {pos - 3}")
            if kind == STR:
                n = _U32(data, pos)[0]
                pos += 4
                m = count(1)
                pos += m
                items = data[pos - m:pos].decode("utf-8", "surrogatepass").split("\0")
                if len(items) != n:
                    raise WireError(f"packed strs: {n} declared, {len(items)} found")
                return _build(tag, items, costs)
            n = 8 * count(8)
            a = array("q" if kind == INT else "d")
            a.frombytes(data[pos:pos + n])
            pos += n
            if _SWAP:
                a.byteswap()
            return _build(tag, a.tolist(), costs)
        if t in _DECODED_CONST:
            return _DECODED_CONST[t]
        if t == CPX:
            pos += 16
            return complex(*_C128(data, pos - 16))
        if (t == RNG or t == REF) and depth < scalar:
            ints = [value(scalar) for _ in range(3 if t == RNG else 1)]
            if any(type(i) is not int for i in ints) or (t == RNG and ints[2] == 0):
                raise WireError(f"malformed {'range' if t == RNG else 'Ref'} before offset {pos}")
            if t == RNG or ref is None:
                return range(*ints) if t == RNG else Ref(ints[0])
            try:
                return ref(ints[0])
            except WireError:
                raise
            except Exception as e:
                raise WireError(f"ref({ints[0]}) failed: {e!r}") from e
        raise WireError(f"unexpected tag {t} at offset {pos - 1}")

    try:
        result = value(0)
    except WireError:
        raise
    except UnicodeDecodeError as e:
        raise WireError(f"invalid UTF-8: {e.reason}") from None
    except (IndexError, struct.error):  # data[pos], or an unpack, past the end
        raise WireError("truncated data") from None
    except RecursionError:  # only if max_depth exceeds what the interpreter allows
        raise WireError("nested too deeply for this interpreter") from None
    except Exception as e:  # a backstop: the contract is WireError, whatever the bytes
        raise WireError(f"malformed data: {e!r}") from e
    if pos != end:
        raise WireError(f"{end - pos} trailing bytes after the value")
    return result
