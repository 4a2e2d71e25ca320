"""How fast the judge/candidate serializer round-trips typical payloads (``sandbox/wire.py``).

    python perf/wire_speed.py [--repeat 5]

Prints, per payload, the best of ``--repeat`` timings of ``dumps``, ``loads`` and the round trip
(dumps + loads), and the encoded size. Not a test: the machine's load moves these numbers; the
figures to compare against are the brief's, about 50 ms for the 100,000-item lists and a few
microseconds for a small call.

Then, each in a fresh interpreter (so that its peak memory is its own), the big payloads: MBPP+
Mbpp/255's largest result, ``list(combinations_with_replacement(5 colors, 77))`` (1,663,740 tuples,
128 million strs), and as many random 77-tuples of 8 colors; timed once each, with the peak
resident memory (``ru_maxrss``) before and after the round trip. The channel's frame limit is
256 MiB; the target is under 160 MB and a round trip of 10-15 s or less.
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import resource
import subprocess
import sys
import time
import timeit
from operator import itemgetter
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


COLORS = ("Dog", "Cat", "Red", "Blue", "Green", "Yellow", "Black", "White")
BIG = {
    "combinations_with_replacement(5 colors, 77)":
        lambda: list(itertools.combinations_with_replacement(COLORS[:5], 77)),
    "1,663,740 random 77-tuples of 8 colors": lambda: random_tuples(1_663_740, 77, COLORS),
}


def random_tuples(n: int, size: int, strs: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``n`` tuples of ``size`` items drawn from ``strs`` (a power of two of them), seeded."""
    picks = random.Random(255).randbytes(n * size).translate(bytes(i % len(strs) for i in range(256)))
    return [itemgetter(*picks[i:i + size])(strs) for i in range(0, n * size, size)]


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def big(name: str) -> None:
    start = time.perf_counter()
    value = BIG[name]()
    built, before = time.perf_counter() - start, maxrss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    data = dumps(value, max_bytes=256 << 20)
    d, d_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    back = loads(data)
    l, l_cpu = time.perf_counter() - start, time.process_time() - cpu
    after = maxrss_mb()
    assert back == value and type(back[0]) is type(value[0]), "round trip differs"
    print(f"{name}: {len(value):,} items built in {built:.1f} s; {len(data):,} bytes "
          f"({len(data) / 2**20:.1f} MiB); dumps {d:.2f} s ({d_cpu:.2f} s CPU), loads {l:.2f} s "
          f"({l_cpu:.2f} s CPU), round trip {d + l:.2f} s; peak RSS {before:,.0f} MB with the payload, "
          f"{after:,.0f} MB after the round trip")


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
    parser.add_argument("--no-big", action="store_true", help="skip the big payloads")
    parser.add_argument("--big", choices=list(BIG), help=argparse.SUPPRESS)  # one, in this process
    args = parser.parse_args()
    if args.big:
        big(args.big)
        return
    print(f"{'payload':40s} {'dumps':>13s} {'loads':>13s} {'round trip':>13s} {'bytes':>10s}")
    for name, value in CASES.items():
        data = dumps(value)
        assert loads(data) == value
        d = best(lambda: dumps(value), args.repeat)
        l = best(lambda: loads(data), args.repeat)
        rt = best(lambda: loads(dumps(value)), args.repeat)
        print(f"{name:40s} {show(d)} {show(l)} {show(rt)} {len(data):10d}")
    if not args.no_big:
        print()
        for name in BIG:
            subprocess.run([sys.executable, __file__, "--big", name], check=True)


if __name__ == "__main__":
    main()
