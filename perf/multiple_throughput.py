"""MultiPL-E throughput: the plugin against MultiPL-E's own evaluators, side by side, one run.

For each benchmark asked for (default humaneval-java, humaneval-cpp, humaneval-go), a realistic
mix of samples, deterministic for a seed: the first --limit problems of the prompt set (30 by
default) that are not known to be broken in the data (tests/data/multiple_broken.json), --n
samples each (10), every sample one of these kinds:

- right: the solved set's completion (tests/data/multiple_solved.jsonl), on the problems it has;
- wrong: compiles and fails a test (C++, Java and Go: a body returning the return type's default
  value, Java's null for a class without an obvious one; the other languages and C++'s Union_
  types, which have no default: the test suite's trivially wrong body, which raises);
- non-compiling: a syntax error, or (C++, Java, Go) a type error;
- timing-out: an infinite loop; exactly one sample in 20, since each costs the whole timeout.

``--copies distinct`` (the default) makes every sample a distinct program: a comment with the
sample's number ends the completion's first line (no line moves). ``--copies identical`` leaves
the copies of a kind on a problem the same program, as a model at low temperature writes them.

Both sides judge exactly the same programs (prompt, stripped as the plugin's generation holds
it, + completion + "\\n" + tests), with the same number of parallel workers (--workers, default
one per core) and the same timeout for the step that runs a program (--timeout, default 15 s:
MultiPL-E's own default, ``safe_subprocess.run``'s; the plugin counts it in CPU seconds,
MultiPL-E in wall seconds):

1. the plugin, end to end: ``python -m pytest benchmarks/<bench> --codeeval-generations=...
   --codeeval-json=... --codeeval-workers=W --codeeval-timeout=T``;
2. MultiPL-E: its own runner, ``evaluation/src/main.py --dir IN --output-dir OUT --max-workers
   W`` (one problem's completions at a time in a thread pool of W threads, each running
   ``eval_<lang>.eval_script`` in subprocesses; identical programs evaluated once, its cache),
   through perf/multiple_anchor.py, which imports it from a MultiPL-E checkout
   (``--multiple-evaluation DIR`` or MULTIPLE_EVALUATION; its docstring says how to get one)
   and adapts only toolchain paths and the timeout.

Printed per benchmark and round: samples, wall seconds, samples/s, CPU seconds (user + system of
the whole process tree), peak memory of the whole process tree (the largest sum of RSS over
every process, sampled every 50 ms from /proc; and the same of PSS, which counts pages shared
between forked processes once), label counts, the ratio, the plugin's compile and run seconds
summed over samples, and the label agreement sample by sample (MultiPL-E's status mapped to a
label class: OK -> passed; SyntaxError -> compile_error/syntax_error; Timeout -> timeout;
Exception and the rest -> failed/crashed/exited/oom), with the disagreements. The machine is
noisy: compare within one run, use --rounds, and prefer the CPU seconds.

    python perf/multiple_throughput.py --multiple-evaluation /tmp/MultiPL-E/evaluation
    python perf/multiple_throughput.py --bench humaneval-rs --bench humaneval-js --n 4 --limit 10
    python perf/multiple_throughput.py --copies identical --rounds 2

``--trivially-wrong`` is the plugin alone on every problem of every prompt set with the test
suite's trivially wrong body (``WRONG`` in tests/test_multiple.py), known-broken ones included,
printing samples/s per set and the problems that did not simply fail (how
tests/data/multiple_broken.json was found):

    python perf/multiple_throughput.py --trivially-wrong [--bench humaneval-cpp] [--limit 40 --n 4]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "perf"))

import proctree  # noqa: E402  (perf/proctree.py)
from multiple_anchor import locate  # noqa: E402  (perf/multiple_anchor.py: where MultiPL-E's checkout is)

from pytest_codeeval.benchmarks import multiple  # noqa: E402
from pytest_codeeval.sandbox import languages  # noqa: E402

SOLVED = REPO / "tests" / "data" / "multiple_solved.jsonl"
BROKEN = REPO / "tests" / "data" / "multiple_broken.json"
DEFAULT_BENCHES = ("humaneval-java", "humaneval-cpp", "humaneval-go")
KINDS = ("right", "wrong", "non-compiling", "timing-out")
TIMEOUT_EVERY = 20  # one timing-out sample in 20

# MultiPL-E's "language" field of a completions file (what its main.py dispatches on) per language
MULTIPLE_LANGUAGE = {"cpp": "cpp", "java": "java", "go": "go_test.go", "rs": "rs", "js": "js", "ts": "ts",
                     "sh": "sh", "lua": "lua", "php": "php", "pl": "pl", "rb": "rb", "r": "r", "rkt": "rkt",
                     "scala": "scala", "cs": "cs", "d": "d", "jl": "jl", "swift": "swift"}
COMMENT = {"sh": "#", "pl": "#", "rb": "#", "r": "#", "jl": "#", "lua": "--", "rkt": ";"}  # else //

# A body that fails to compile or parse, whatever the problem (no names of the prompt used).
SYNTAX = {
    "cpp": "\n    return {} +;", "java": "\n        return +;", "go": "\n    return +\n}\n",
    "rs": "\n    let codeeval_x = ;\n    unimplemented!()", "js": "\n  return +;\n}\n", "ts": "\n  return +;\n}",
    "sh": "\n    if then", "lua": "\n    return +\nend", "php": "\n    return +;\n}", "pl": "\n    return 1 +;\n}",
    "rb": "\n  1 +\nend", "r": "\n    1 +\n}", "rkt": "\n  (codeeval-undefined-function 1))",
    "scala": "\n        1 +", "cs": "\n        return +;", "d": "\n{\n    return +;\n}", "jl": "\n    return +\nend",
    "swift": "\n    return +",
}
# An infinite loop that keeps a core busy, whatever the problem.
LOOP = {
    "cpp": "\n    volatile long codeeval_x = 0;\n    while (true) codeeval_x++;",
    "java": "\n        long codeevalX = 0;\n        while (true) { codeevalX++; }",
    "go": "\n    for {\n    }\n}\n",
    "rs": "\n    let mut codeeval_x: u64 = 0;\n    loop {\n        codeeval_x = codeeval_x.wrapping_add(1);\n    }",
    "js": "\n  while (true) {}\n}\n", "ts": "\n  while (true) {}\n}", "sh": "\n    while true; do :; done",
    "lua": "\n    while true do end\nend", "php": "\n    while (true) { }\n}", "pl": "\n    while (1) { }\n}",
    "rb": "\n  loop { }\nend", "r": "\n    repeat { }\n}", "rkt": "\n  (let loop () (loop)))",
    "scala": "\n        var codeevalX = 0L\n        while (true) { codeevalX += 1 }\n        ???",
    "cs": "\n        while (true) { }", "d": "\n{\n    while (true) { }\n}", "jl": "\n    while true end\nend",
    "swift": "\n    while true { }",
}


# -- the mix (pure) -------------------------------------------------------------------------------
def java_default(prompt: str) -> str:
    """A Java expression of the default value of the prompt's method's return type."""
    m = re.search(r"public static ([^(]+) (\w+)\(", prompt.strip().splitlines()[-1])
    kind = m.group(1).strip() if m else ""
    if kind in ("long", "int", "short", "byte", "char", "float", "double"):
        return "0"
    if kind == "boolean":
        return "false"
    if kind == "String":
        return '""'
    for prefix, value in (("ArrayList", "new ArrayList<>()"), ("HashMap", "new HashMap<>()"),
                          ("Optional", "Optional.empty()")):
        if kind.startswith(prefix):
            return value
    return "null"


def go_results(prompt: str) -> list[str]:
    """The result types of the Go function the prompt ends with (``func f(a int) (int, bool) {``)."""
    line = prompt.strip().splitlines()[-1]
    start = line.index("(", line.index("func "))
    depth = 0
    for i in range(start, len(line)):
        depth += {"(": 1, ")": -1}.get(line[i], 0)
        if depth == 0:
            break
    rest = line[i + 1:].strip()
    rest = rest[:-1].strip() if rest.endswith("{") else rest
    if rest.startswith("(") and rest.endswith(")"):
        rest = rest[1:-1]
    parts, depth, cur = [], 0, ""
    for ch in rest:
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in (*parts, cur.strip()) if p]


def wrong_body(lang: str, prompt: str) -> str:
    """A completion that compiles and fails a test: the return type's default (C++, Java, Go), else WRONG's raise."""
    if lang == "cpp" and not prompt.strip().splitlines()[-1].startswith("Union_"):
        return "\n    return {};"  # (MultiPL-E's Union_A_B structs have no default constructor)
    if lang == "java":
        return f"\n        return {java_default(prompt)};"
    if lang == "go":
        values = ", ".join(f"*new({t})" for t in go_results(prompt))
        return f"\n    return {values}\n}}\n"
    from tests.test_multiple import WRONG  # the bodies the test suite uses: raise at the first call

    return WRONG[lang]


def broken_body(lang: str, prompt: str, type_error: bool) -> str:
    """A completion that does not compile: a syntax error, or for C++, Java and Go a type error."""
    if type_error and lang == "cpp":
        return '\n    int codeeval_x = "codeeval";\n    return {};'
    if type_error and lang == "java":
        return f'\n        int codeevalX = "codeeval";\n        return {java_default(prompt)};'
    if type_error and lang == "go":
        return '\n    var codeevalX int = "codeeval"\n    _ = codeevalX\n    panic(0)\n}\n'
    return SYNTAX[lang]


def distinct(lang: str, completion: str, number: int) -> str:
    """The completion with a comment naming the sample at the end of its first non-blank line (no line moves)."""
    lines = completion.split("\n")
    for i, line in enumerate(lines):
        if line.strip():
            lines[i] = f"{line} {COMMENT.get(lang, '//')} codeeval sample {number}"
            break
    return "\n".join(lines)


@dataclass
class Sample:
    task_id: str
    kind: str
    completion: str


@dataclass
class Mix:
    bench: str
    records: list[dict[str, Any]]  # the problems chosen, in file order
    samples: list[Sample]  # problem by problem, in file order
    with_right: int = 0  # problems that have a right completion
    skipped_broken: int = 0
    kinds: Counter = field(default_factory=Counter)


def build_mix(bench: str, records: list[dict[str, Any]], solved: dict[str, str], broken: set[str],
              limit: int, n: int, seed: int, copies: str) -> Mix:
    """The deterministic mix of one prompt set: ``limit`` problems not in ``broken`` x ``n`` samples."""
    lang = bench.split("-")[1]
    chosen = [r for r in records if r["name"] not in broken]
    skipped = len(records) - len(chosen)
    if limit:  # the problems with a right completion first, the rest in file order; then in file order
        keep = {r["name"] for r in sorted(chosen, key=lambda r: r["name"] not in solved)[:limit]}
        chosen = [r for r in chosen if r["name"] in keep]
    mix = Mix(bench, chosen, [], skipped_broken=skipped)
    rng = random.Random(f"{seed}:{bench}")
    total = len(mix.records) * n
    loops = set(rng.sample(range(total), total // TIMEOUT_EVERY))
    index = 0
    for r in mix.records:
        prompt, right = r["prompt"].strip(), solved.get(r["name"])
        mix.with_right += right is not None
        for _ in range(n):
            if index in loops:
                kind = "timing-out"
            elif right is not None:
                kind = rng.choices(KINDS[:3], weights=(0.5, 0.3, 0.2))[0]
            else:
                kind = rng.choices(KINDS[1:3], weights=(0.75, 0.25))[0]
            if kind == "right":
                completion = right
            elif kind == "wrong":
                completion = wrong_body(lang, prompt)
            elif kind == "non-compiling":
                completion = broken_body(lang, prompt, type_error=rng.random() < 0.5)
            else:
                completion = LOOP[lang]
            if copies == "distinct":
                completion = distinct(lang, completion, index)
            mix.samples.append(Sample(r["name"], kind, completion))
            mix.kinds[kind] += 1
            index += 1
    return mix


# MultiPL-E's statuses and the plugin's labels, in classes that can be compared
CLASS_OF_LABEL = {"passed": "passed", "compile_error": "compile", "syntax_error": "compile", "timeout": "timeout",
                  "failed": "failed", "crashed": "failed", "exited": "failed", "oom": "failed"}
CLASS_OF_STATUS = {"OK": "passed", "SyntaxError": "compile", "Timeout": "timeout"}  # else failed


def status_class(status: str | None) -> str:
    """MultiPL-E's status (``Exception``, ``AssertionError``, ... are failures) as a label class."""
    return "missing" if status is None else CLASS_OF_STATUS.get(status, "failed")


def agreement(mix: Mix, ours: list[str | None], theirs: list[str | None]) -> tuple[int, Counter, dict]:
    """(samples whose classes agree, Counter of (kind, our label, their status) that disagree, an example each)."""
    agree, bad, example = 0, Counter(), {}
    for s, label, status in zip(mix.samples, ours, theirs):
        if label is not None and CLASS_OF_LABEL.get(label) == status_class(status):
            agree += 1
        else:
            key = (s.kind, label or "missing", status or "missing")
            bad[key] += 1
            example.setdefault(key, s.task_id)
    return agree, bad, example


# -- the two sides --------------------------------------------------------------------------------
@dataclass
class Side:
    measured: proctree.Measured
    labels: list[str | None]  # one per sample, in the mix's order
    seconds: list[float]  # wall seconds each sample occupied a worker (0 for a program judged before)
    compile_s: float = 0.0
    run_s: float = 0.0
    stderr_of: list[str] = field(default_factory=list)


def keep(args: argparse.Namespace, bench: str, side: str, paths: list[Path], m: proctree.Measured) -> None:
    """With --out: a side's inputs, results and output in OUT/<bench>/<side>/ (the last round's)."""
    if not args.out:
        return
    where = Path(args.out) / bench / side
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    for path in paths:
        if path.is_dir():
            shutil.copytree(path, where / path.name)
        elif path.is_file():
            shutil.copy(path, where / path.name)
    (where / "stdout.txt").write_text(m.stdout)
    (where / "stderr.txt").write_text(m.stderr)


def run_plugin(mix: Mix, tmp: Path, args: argparse.Namespace, root: Path = REPO, side: str = "plugin") -> Side:
    """The plugin of the checkout at ``root`` (this one, or --baseline-root's) on the mix, end to end."""
    gen, out = tmp / f"{side}-samples.jsonl", tmp / f"{side}-results.json"
    with gen.open("w") as f:
        for s in mix.samples:
            f.write(json.dumps({"task_id": s.task_id, "completion": s.completion}) + "\n")
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "pytest", str(root / "benchmarks" / mix.bench), "-q", "-p", "no:cacheprovider",
           f"--codeeval-generations={mix.bench}={gen}", f"--codeeval-json={out}", f"--codeeval-data={args.data}",
           f"--codeeval-workers={args.workers}", f"--codeeval-isolation={args.isolation}", "--codeeval-k=1",
           f"--codeeval-timeout={args.timeout}"]
    # `python -m pytest` puts the working directory first on sys.path: run from `root`, that
    # checkout's pytest_codeeval is the one the entry point imports, whatever is installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    m = proctree.run(cmd, pss=True, cwd=root, env=env)
    keep(args, mix.bench, side, [gen, out], m)
    if not out.is_file():
        sys.exit(f"{mix.bench}: the plugin wrote no results ({m.returncode})\n{m.stdout[-3000:]}\n{m.stderr[-3000:]}")
    problems = json.loads(out.read_text())["problems"].get(mix.bench, {})
    seen: Counter = Counter()
    labels: list[str | None] = []
    seconds: list[float] = []
    for s in mix.samples:
        p = problems.get(s.task_id)
        i = seen[s.task_id]
        seen[s.task_id] += 1
        there = p is not None and i < len(p["outcomes"])
        labels.append(p["outcomes"][i] if there else None)
        seconds.append((p["compile_seconds"][i] or 0) + (p["run_seconds"][i] or 0) if there else 0.0)
    compile_s = sum(x or 0 for p in problems.values() for x in p["compile_seconds"])
    run_s = sum(x or 0 for p in problems.values() for x in p["run_seconds"])
    return Side(m, labels, seconds, compile_s, run_s)


def run_multiple(mix: Mix, tmp: Path, args: argparse.Namespace) -> Side:
    lang = mix.bench.split("-")[1]
    inputs, outputs, scratch = tmp / "multiple-in", tmp / "multiple-out", tmp / "multiple-tmp"
    for d in (inputs, outputs, scratch):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    by_task: dict[str, list[str]] = {}
    for s in mix.samples:
        by_task.setdefault(s.task_id, []).append(s.completion)
    for r in mix.records:
        doc = {"name": r["name"], "language": MULTIPLE_LANGUAGE[lang], "prompt": r["prompt"].strip(),
               "tests": r["tests"], "stop_tokens": r["stop_tokens"], "completions": by_task[r["name"]]}
        (inputs / f"{r['name']}.json").write_text(json.dumps(doc))
    cmd = [sys.executable, str(REPO / "perf" / "multiple_anchor.py"),
           f"--multiple-evaluation={args.multiple_evaluation}",
           f"--timeout={args.timeout}", "--dir", str(inputs), "--output-dir", str(outputs),
           "--max-workers", str(args.workers)]
    # its evaluators write their programs and binaries (never removed, for C++) into TMPDIR
    m = proctree.run(cmd, pss=True, env={**os.environ, "TMPDIR": str(scratch)})
    if m.returncode != 0:
        sys.exit(f"{mix.bench}: MultiPL-E's runner failed ({m.returncode})\n{m.stdout[-3000:]}\n{m.stderr[-3000:]}")
    labels: list[str | None] = []
    seconds: list[float] = []
    stderr_of: list[str] = []
    judged: set[tuple[str, str]] = set()
    for r in mix.records:
        path = outputs / f"{r['name']}.results.json"
        results = json.loads(path.read_text())["results"] if path.is_file() else []
        for i, completion in enumerate(by_task[r["name"]]):
            result = results[i] if i < len(results) else {}
            labels.append(result.get("status"))
            # its cache judges a program once; the copies share that result and its seconds
            seconds.append(result.get("seconds", 0.0) if (r["name"], completion) not in judged else 0.0)
            judged.add((r["name"], completion))
            stderr_of.append((result.get("stderr") or result.get("stdout") or "").strip())
    shutil.rmtree(scratch, ignore_errors=True)
    keep(args, mix.bench, "multiple", [inputs, outputs], m)
    return Side(m, labels, seconds, stderr_of=stderr_of)


# -- the run --------------------------------------------------------------------------------------
def load_records(data: Path, bench: str) -> list[dict[str, Any]]:
    path = data / multiple.FOLDER / multiple.file_name(bench)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def solved_for(bench: str) -> dict[str, str]:
    rows = [json.loads(line) for line in SOLVED.read_text().splitlines() if line.strip()]
    return {r["task_id"]: r["completion"] for r in rows if r["benchmark"] == bench}


def label_counts(labels: list[str | None]) -> str:
    return ", ".join(f"{k} {v}" for k, v in Counter(x or "missing" for x in labels).most_common())


def report_side(name: str, samples: int, side: Side) -> str:
    m = side.measured
    return (f"  {name:<10} {m.wall:8.1f} {samples / m.wall:9.2f} {m.cpu:8.1f} {proctree.mib(m.peak_rss):>9} "
            f"{proctree.mib(m.peak_pss):>9} {m.peak_processes:>5}  {label_counts(side.labels)}")


def checkout_commit(evaluation: Path) -> str:
    """' (commit X)' of the MultiPL-E checkout: git's, else a COMMIT file beside evaluation/ (an export)."""
    done = subprocess.run(["git", "-C", str(evaluation), "rev-parse", "HEAD"], capture_output=True, text=True)
    if done.returncode == 0:
        return f" (commit {done.stdout.strip()[:12]})"
    written = evaluation.parent / "COMMIT"
    return f" (commit {written.read_text().strip()[:12]})" if written.is_file() else ""


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def trivially_wrong(args: argparse.Namespace) -> None:
    """Every problem (or the first --limit) x --n samples of WRONG's body, judged by the plugin."""
    from tests.test_multiple import WRONG

    benches = args.bench or [f"{s}-{lang}" for s in multiple.SOURCES for lang in multiple.LANGUAGES]
    n = args.n or 1
    print(f"{len(os.sched_getaffinity(0))} cores, workers={args.workers}, isolation={args.isolation}, n={n}, "
          f"timeout={args.timeout} s\nload: {uptime()}")
    print(f"{'benchmark':<15} {'problems':>8} {'samples':>7} {'wall s':>7} {'samples/s':>9} {'compile s':>9} "
          f"{'run s':>7} {'RSS MiB':>7}  labels")
    for bench in benches:
        records = load_records(Path(args.data), bench)[: args.limit or None]
        lang = bench.split("-")[1]
        mix = Mix(bench, records, [Sample(r["name"], "wrong", WRONG[lang]) for r in records for _ in range(n)])
        with tempfile.TemporaryDirectory(prefix="codeeval-mtp-") as tmp:
            side = run_plugin(mix, Path(tmp), args)
        m = side.measured
        print(f"{bench:<15} {len(records):>8} {len(mix.samples):>7} {m.wall:>7.1f} {len(mix.samples) / m.wall:>9.2f} "
              f"{side.compile_s:>9.1f} {side.run_s:>7.1f} {proctree.mib(m.peak_rss):>7}  {label_counts(side.labels)}",
              flush=True)
        odd: dict[str, set[str]] = {}
        for s, label in zip(mix.samples, side.labels):
            if label != "failed":  # what a trivially wrong body should not get
                odd.setdefault(s.task_id, set()).add(label or "missing")
        for task, labels in odd.items():
            print(f"    {task}: {', '.join(sorted(labels))}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", action="append", help=f"benchmark(s) (default: {', '.join(DEFAULT_BENCHES)})")
    ap.add_argument("--n", type=int, help="samples per problem (default 10; --trivially-wrong: 1)")
    ap.add_argument("--limit", type=int, help="problems per benchmark, those with a right completion first, then "
                    "in file order, known-broken ones left out (default 30; 0: all; --trivially-wrong: all)")
    ap.add_argument("--copies", choices=("distinct", "identical"), default="distinct",
                    help="every sample a distinct program (default), or a kind's copies on a problem identical")
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)),
                    help="parallel samples on both sides: --codeeval-workers and MultiPL-E's --max-workers "
                    "(default: one per core)")
    ap.add_argument("--timeout", type=int, default=15, help="seconds for the step that runs a program, both sides "
                    "(default 15, MultiPL-E's own default)")
    ap.add_argument("--rounds", type=int, default=1, help="measure each benchmark this many times, alternating "
                    "which side goes first")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--isolation", default="auto", help="--codeeval-isolation (default auto)")
    ap.add_argument("--multiple-evaluation", metavar="DIR", default=os.environ.get("MULTIPLE_EVALUATION"),
                    help="the evaluation/ folder of a MultiPL-E checkout (env MULTIPLE_EVALUATION)")
    ap.add_argument("--baseline-root", metavar="DIR", help="a third side: the plugin of another checkout (an "
                    "earlier commit: `git worktree add /tmp/base <rev>`), run from there, on the same mix; its "
                    "labels must equal this checkout's sample for sample")
    ap.add_argument("--no-multiple", action="store_true", help="leave MultiPL-E's side out (with --baseline-root)")
    ap.add_argument("--out", metavar="DIR", help="keep each side's samples, results and output here")
    ap.add_argument("--data", default=os.environ.get("CODEEVAL_DATA") or str(REPO.parent / "shared" / "data"))
    ap.add_argument("--trivially-wrong", action="store_true",
                    help="the plugin alone, every sample the test suite's trivially wrong body (WRONG), every "
                    "problem of every prompt set by default, known-broken ones included: samples/s per set and "
                    "the problems that did not simply fail (how the known-broken list was found)")
    args = ap.parse_args()
    if args.trivially_wrong:
        trivially_wrong(args)
        return
    args.n = 10 if args.n is None else args.n
    args.limit = 30 if args.limit is None else args.limit
    args.multiple_evaluation = None if args.no_multiple else str(locate(args.multiple_evaluation))
    baseline = Path(args.baseline_root).resolve() if args.baseline_root else None
    if baseline and not (baseline / "pytest_codeeval" / "plugin.py").is_file():
        sys.exit(f"--baseline-root {baseline}: not a pytest-codeeval checkout (no pytest_codeeval/plugin.py)")
    data = Path(args.data)
    broken_all: dict[str, dict[str, str]] = json.loads(BROKEN.read_text())
    print(f"{len(os.sched_getaffinity(0))} cores, workers={args.workers} (both sides), timeout={args.timeout} s "
          f"(both sides), copies={args.copies}, n={args.n}, limit={args.limit}, seed={args.seed}, "
          f"isolation={args.isolation}")
    if args.multiple_evaluation:
        print(f"MultiPL-E evaluators: {args.multiple_evaluation}{checkout_commit(Path(args.multiple_evaluation))}")
    print(f"plugin: {REPO}{checkout_commit(REPO)}"
          + (f"; baseline plugin: {baseline}{checkout_commit(baseline)}" if baseline else ""))
    print(f"peak memory: the largest sum over the whole process tree, sampled every 50 ms from /proc; "
          f"PSS counts shared pages once\nload: {uptime()}", flush=True)
    summary = []
    for bench in args.bench or DEFAULT_BENCHES:
        lang = bench.split("-")[1]
        missing = languages.missing(lang)
        if missing:
            print(f"\n{bench}: skipped: {missing}", flush=True)
            continue
        mix = build_mix(bench, load_records(data, bench), solved_for(bench), set(broken_all.get(bench, {})),
                        args.limit, args.n, args.seed, args.copies)
        if not mix.samples:
            print(f"\n{bench}: no problems left ({mix.skipped_broken} known broken)", flush=True)
            continue
        total = len(mix.samples)
        distinct_programs = len({(s.task_id, s.completion) for s in mix.samples})
        print(f"\n{bench}: {len(mix.records)} problems ({mix.with_right} with a right completion, "
              f"{mix.skipped_broken} known broken left out), {total} samples, {distinct_programs} distinct programs; "
              f"kinds: {', '.join(f'{k} {mix.kinds[k]}' for k in KINDS)}", flush=True)
        for round_ in range(1, args.rounds + 1):
            names = (["multiple"] if args.multiple_evaluation else []) + ["plugin"] + (["baseline"] if baseline else [])
            order = names if round_ % 2 else names[::-1]  # alternate which side goes first
            with tempfile.TemporaryDirectory(prefix="codeeval-mtp-") as tmp_name:
                tmp = Path(tmp_name)
                sides: dict[str, Side] = {}
                for name in order:
                    if name == "multiple":
                        sides[name] = run_multiple(mix, tmp, args)
                    else:
                        sides[name] = run_plugin(mix, tmp, args, baseline if name == "baseline" else REPO, name)
            report_round(mix, round_, order, sides, args)
            summary.append((bench, round_, total, sides))
            sys.stdout.flush()
    if summary:
        print(f"\nsummary (copies={args.copies}, workers={args.workers}, timeout={args.timeout} s; load: {uptime()})")
        print(f"  {'benchmark':<16} {'rnd':>3} {'samples':>7} {'plugin/s':>8} {'base/s':>7} {'M-E/s':>7} "
              f"{'vs base':>7} {'CPU':>6} {'vs M-E':>7} {'CPU':>6} {'RSS MiB pl/base/M-E':>20}")
        for bench, round_, total, sides in summary:
            po = sides["plugin"].measured
            row = f"  {bench:<16} {round_:>3} {total:>7} {total / po.wall:8.2f}"
            for name in ("baseline", "multiple"):
                m = sides[name].measured if name in sides else None
                row += f" {total / m.wall:7.2f}" if m else f" {'-':>7}"
            for name in ("baseline", "multiple"):
                m = sides[name].measured if name in sides else None
                row += f" {m.wall / po.wall:6.2f}x {m.cpu / po.cpu:5.2f}x" if m else f" {'-':>7} {'-':>6}"
            row += " " + "/".join(proctree.mib(sides[n].measured.peak_rss) if n in sides else "-"
                                  for n in ("plugin", "baseline", "multiple")).rjust(20)
            print(row)


def report_round(mix: Mix, round_: int, order: list[str], sides: dict[str, Side], args: argparse.Namespace) -> None:
    """One round's table: each side's figures, the ratios, where the worker time went, label agreement."""
    total = len(mix.samples)
    ours = sides["plugin"]
    titles = {"plugin": "plugin", "baseline": "baseline", "multiple": "MultiPL-E"}
    print(f" round {round_} (load {os.getloadavg()[0]:.2f}, order {', '.join(titles[n] for n in order)})")
    print(f"  {'side':<10} {'wall s':>8} {'samples/s':>9} {'CPU s':>8} {'RSS MiB':>9} {'PSS MiB':>9} "
          f"{'procs':>5}  labels")
    for name in ("plugin", "baseline", "multiple"):
        if name in sides:
            print(report_side(titles[name], total, sides[name]))
    for name in ("baseline", "multiple"):
        if name not in sides:
            continue
        theirs = sides[name]
        speed = theirs.measured.wall / ours.measured.wall
        cpu = theirs.measured.cpu / ours.measured.cpu if ours.measured.cpu else float("nan")
        print(f"  vs {titles[name]:<9} {speed:.2f}x samples/s, its CPU / the plugin's {cpu:.2f}x; compile + run "
              f"seconds summed over samples: plugin {ours.compile_s:.1f} + {ours.run_s:.1f}"
              + (f", baseline {theirs.compile_s:.1f} + {theirs.run_s:.1f}" if name == "baseline" else "")
              + f"; peak RSS per worker {ours.measured.peak_rss / 2**20 / args.workers:.0f} MiB plugin, "
              f"{theirs.measured.peak_rss / 2**20 / args.workers:.0f} MiB {titles[name]}")
        by_kind = {k: (sum(t for s, t in zip(mix.samples, ours.seconds) if s.kind == k),
                       sum(t for s, t in zip(mix.samples, theirs.seconds) if s.kind == k)) for k in KINDS}
        rest = [sum(v[j] for k, v in by_kind.items() if k != "timing-out") for j in (0, 1)]
        print(f"  worker s   by kind, plugin/{titles[name]} (wall seconds a worker spent on the samples): "
              + ", ".join(f"{k} {a:.0f}/{b:.0f}" for k, (a, b) in by_kind.items())
              + f"; all but timing-out {rest[0]:.0f}/{rest[1]:.0f}"
              + (f" ({rest[1] / rest[0]:.2f}x)" if rest[0] else ""))
    print("  kind -> plugin label: " + "; ".join(
        f"{k} {label_counts([x for s, x in zip(mix.samples, ours.labels) if s.kind == k])}"
        for k in KINDS if mix.kinds[k]))
    for name, side in sides.items():
        if side.measured.leftovers:
            print(f"  {titles[name]}: {side.measured.leftovers} processes left running after the run (killed)")
    if "baseline" in sides:
        # the baseline judges every sample alone: the verdict a batched or cached path must reproduce
        same = [i for i, (a, b) in enumerate(zip(ours.labels, sides["baseline"].labels)) if a == b and a is not None]
        print(f"  verdicts   {len(same)}/{total} samples with exactly the baseline's label")
        diff = Counter((mix.samples[i].kind, ours.labels[i] or "missing", sides["baseline"].labels[i] or "missing")
                       for i in range(total) if i not in set(same))
        for (kind, a, b), count in diff.most_common():
            task = next(mix.samples[i].task_id for i in range(total) if mix.samples[i].kind == kind
                        and (ours.labels[i] or "missing") == a and (sides["baseline"].labels[i] or "missing") == b)
            print(f"    {count:>4} x {kind}: plugin {a}, baseline {b}  (e.g. {task})")
    if "multiple" in sides:
        theirs = sides["multiple"]
        agree, bad, example = agreement(mix, ours.labels, theirs.labels)
        print(f"  agreement  {agree}/{total} samples ({100 * agree / total:.1f}%) in the same class as MultiPL-E's")
        for (kind, label, status), count in bad.most_common():
            task = example[(kind, label, status)]
            i = next(j for j, s in enumerate(mix.samples) if s.task_id == task and s.kind == kind
                     and (ours.labels[j] or "missing") == label and (theirs.labels[j] or "missing") == status)
            said = theirs.stderr_of[i].splitlines()[-1][:100] if theirs.stderr_of[i] else ""
            print(f"    {count:>4} x {kind}: plugin {label}, MultiPL-E {status}  (e.g. {task}"
                  + (f": {said!r})" if said else ")"))

if __name__ == "__main__":
    main()
