"""How fast the judge/candidate serializer round-trips typical payloads (``sandbox/wire.py``).

    python perf/wire_speed.py [--repeat 5]

Prints, per payload, the best of ``--repeat`` timings of ``dumps``, ``loads`` and the round trip
(dumps + loads), and the encoded size. Not a test: the machine's load moves these numbers; the
figures to compare against are the brief's, about 50 ms for the 100,000-item lists and a few
microseconds for a small call.
"""

from __future__ import annotations

import argparse
import math
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_codeeval.sandbox.wire import dumps, loads  # noqa: E402

CASES = {
    "small call ((3, [1, 2.5, 'ab']), {})": ((3, [1, 2.5, "ab"]), {}),
    "None": None,
    "100,000 small ints": list(range(100_000)),
    "100,000 short strs": [f"s{i}" for i in range(100_000)],
    "100,000 floats": [i / 3 for i in range(100_000)],
    "set of 100,000 ints": set(range(100_000)),
    "10,000 [int, str, float] lists": [[i, str(i), i / 2] for i in range(10_000)],
    "dict of 10,000 str -> int": {f"k{i}": i for i in range(10_000)},
    "factorial(1000)": math.factorial(1000),
    "100,000 ints beyond 64 bits": [2**64 + i for i in range(100_000)],
}


def best(fn, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` runs of enough calls to last ~0.1 s."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    number = max(1, number // 2)
    return min(timer.repeat(repeat=repeat, number=number)) / number


def show(seconds: float) -> str:
    return f"{seconds * 1e6:10.2f} us" if seconds < 1e-3 else f"{seconds * 1e3:10.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'payload':40s} {'dumps':>13s} {'loads':>13s} {'round trip':>13s} {'bytes':>10s}")
    for name, value in CASES.items():
        data = dumps(value)
        assert loads(data) == value
        d = best(lambda: dumps(value), args.repeat)
        l = best(lambda: loads(data), args.repeat)
        rt = best(lambda: loads(dumps(value)), args.repeat)
        print(f"{name:40s} {show(d)} {show(l)} {show(rt)} {len(data):10d}")


if __name__ == "__main__":
    main()
