"""The pure parts of perf/multiple_throughput.py (the mix, the label classes), perf/multiple_anchor.py
(toolchain and timeout adaptation of MultiPL-E's evaluators) and perf/proctree.py (the whole
process tree's peak memory). No timings: the figures are the scripts' to print."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
import types
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.test_isolation_primitives import alive


def _load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "perf" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


mtp = _load("multiple_throughput")
anchor = _load("multiple_anchor")
proctree = _load("proctree")


def _records(count: int) -> list[dict[str, Any]]:
    return [{"name": f"HumanEval_{i}_f", "prompt": "func f(x int) (int, []map[string]int) {\n", "tests": "",
             "stop_tokens": []} for i in range(count)]


# -- the mix -----------------------------------------------------------------------------------------
def test_mix_is_deterministic_puts_solved_problems_first_and_skips_broken() -> None:
    records = _records(50)
    solved = {"HumanEval_40_f": "\n    return x, nil\n}\n"}
    broken = {"HumanEval_1_f"}
    a = mtp.build_mix("humaneval-go", records, solved, broken, limit=30, n=10, seed=7, copies="distinct")
    b = mtp.build_mix("humaneval-go", records, solved, broken, limit=30, n=10, seed=7, copies="distinct")
    assert [(s.task_id, s.kind, s.completion) for s in a.samples] == \
        [(s.task_id, s.kind, s.completion) for s in b.samples]
    names = [r["name"] for r in a.records]
    assert len(names) == 30 and "HumanEval_40_f" in names and "HumanEval_1_f" not in names
    assert names == [r["name"] for r in records if r["name"] in set(names)]  # file order kept
    assert a.skipped_broken == 1 and a.with_right == 1
    assert a.kinds["timing-out"] == 300 // 20  # exactly one in twenty
    assert {s.kind for s in a.samples if s.task_id != "HumanEval_40_f"} <= {"wrong", "non-compiling", "timing-out"}
    assert set(a.kinds) == set(mtp.KINDS)
    other = mtp.build_mix("humaneval-go", records, solved, broken, limit=30, n=10, seed=8, copies="distinct")
    assert [s.kind for s in other.samples] != [s.kind for s in a.samples]


def test_distinct_copies_differ_without_moving_a_line_and_identical_ones_repeat() -> None:
    records = _records(3)
    distinct = mtp.build_mix("humaneval-go", records, {}, set(), 0, 10, 1, "distinct")
    identical = mtp.build_mix("humaneval-go", records, {}, set(), 0, 10, 1, "identical")
    assert [s.kind for s in distinct.samples] == [s.kind for s in identical.samples]
    assert len({s.completion for s in distinct.samples}) == 30
    assert len({(s.task_id, s.completion) for s in identical.samples}) < 30 // 2
    for d, i in zip(distinct.samples, identical.samples):
        assert re.sub(r" // codeeval sample \d+", "", d.completion) == i.completion != d.completion
    assert mtp.distinct("rkt", "\n  (+ 1 2))", 4) == "\n  (+ 1 2)) ; codeeval sample 4"
    assert mtp.distinct("sh", "\n\n    echo 1", 0) == "\n\n    echo 1 # codeeval sample 0"


def test_typed_defaults_follow_the_prompts_signature() -> None:
    assert mtp.go_results("// doc\nfunc f(a int, b func(int) int) (int, map[string][]int) {\n") == \
        ["int", "map[string][]int"]
    assert mtp.go_results("func g(xs []interface{}) []interface{} {") == ["[]interface{}"]
    assert mtp.wrong_body("go", "func g(s string) (bool, int) {") == "\n    return *new(bool), *new(int)\n}\n"
    assert mtp.wrong_body("cpp", "// doc\nstd::vector<long> f(long n) {\n") == "\n    return {};"
    assert "throw" in mtp.wrong_body("cpp", "Union_std_string_long f(long n) {\n")  # no default constructor
    sig = "    public static {} f(long x) {{\n"
    assert mtp.java_default(sig.format("long")) == "0"
    assert mtp.java_default(sig.format("boolean")) == "false"
    assert mtp.java_default(sig.format("ArrayList<Pair<Long, Long>>")) == "new ArrayList<>()"
    assert mtp.java_default(sig.format("Optional<Long>")) == "Optional.empty()"
    assert mtp.java_default(sig.format("Pair<String, Long>")) == "null"
    assert mtp.broken_body("java", sig.format("String"), type_error=True).endswith('return "";')


def test_multiple_statuses_map_to_label_classes() -> None:
    mix = mtp.Mix("humaneval-cpp", [], [mtp.Sample(f"t{i}", "wrong", "") for i in range(6)])
    ours = ["passed", "compile_error", "timeout", "crashed", "failed", None]
    theirs = ["OK", "SyntaxError", "Timeout", "Exception", "SyntaxError", "OK"]
    agree, bad, example = mtp.agreement(mix, ours, theirs)
    assert agree == 4
    assert bad == Counter({("wrong", "failed", "SyntaxError"): 1, ("wrong", "missing", "OK"): 1})
    assert example[("wrong", "failed", "SyntaxError")] == "t4"
    assert mtp.status_class("AssertionError") == "failed" and mtp.status_class(None) == "missing"


# -- the adapter of MultiPL-E's evaluators -----------------------------------------------------------
def test_anchor_replaces_missing_tools_and_the_run_steps_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anchor.shutil, "which", lambda name: None if name in ("rdmd", "csc") else f"/usr/bin/{name}")
    argv = anchor.adapt_argv(["rdmd", "-unittest", "/t/x.d"])
    assert argv[:2] == ["sh", "-c"] and argv[2].startswith("ldmd2 -unittest ") and argv[3:] == ["rdmd", "/t/x.d"]
    assert anchor.adapt_argv(["csc", "/d:DEBUG", "x.cs"]) == ["mcs", "/d:DEBUG", "x.cs"]
    monkeypatch.setattr(anchor, "_javatuples", lambda: "/here/javatuples.jar")
    assert anchor.adapt_argv(["java", "-cp", f"/o:{anchor.JAVATUPLES}", "Problem"])[2] == "/o:/here/javatuples.jar"

    calls: list[tuple[list[str], int]] = []

    def run(args: list[str], timeout_seconds: int = 15, max_output_size: int = 2048, env: Any = None) -> str:
        calls.append((args, timeout_seconds))
        return "done"
    run.__module__ = "safe_subprocess"
    module = types.ModuleType("eval_fake")
    module.run = run
    anchor.patch(module, timeout=3)
    module.run(["g++", "x.cpp"])
    module.run(["./x"])
    module.run(["scalac", "x.scala"], timeout_seconds=45)
    assert calls == [(["g++", "x.cpp"], 15), (["./x"], 3), (["scalac", "x.scala"], 45)]

    module = types.ModuleType("eval_fake_go")
    module.subprocess = subprocess
    anchor.patch(module, timeout=3)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(anchor, "_run_group", lambda args, **kw: seen.update(args=args, **kw))
    module.subprocess.run(["go", "test", "x_test.go"], timeout=30, capture_output=True)
    assert seen == {"args": ["go", "test", "x_test.go"], "timeout": 3, "capture_output": True}
    module.subprocess.run(["rustc", "x.rs"], timeout=15)
    assert seen["timeout"] == 15


def test_anchor_kills_a_timed_out_steps_whole_process_group(tmp_path: Path) -> None:
    """`go test` runs the test binary as its child: subprocess.run's timeout killed only `go test`,
    and the binary looped on, taking a core from every later sample of the comparison."""
    module = types.ModuleType("eval_fake_go")
    module.subprocess = subprocess
    anchor.patch(module, timeout=1)
    pid_file = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        module.subprocess.run(["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], timeout=30,
                              capture_output=True)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and alive(grandchild):
        time.sleep(0.05)
    assert not alive(grandchild)
    done = module.subprocess.run(["sh", "-c", "echo out; echo err >&2; exit 3"], timeout=30, capture_output=True,
                                 text=True)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


def test_anchor_says_how_to_get_multiple_when_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MULTIPLE_EVALUATION", raising=False)
    with pytest.raises(SystemExit, match="nuprl/MultiPL-E"):
        anchor.locate(str(tmp_path))
    (tmp_path / "evaluation" / "src").mkdir(parents=True)
    (tmp_path / "evaluation" / "src" / "main.py").write_text("")
    assert anchor.locate(str(tmp_path)) == tmp_path / "evaluation"


# -- the whole process tree's memory -----------------------------------------------------------------
def test_tree_peak_sums_every_descendant_and_reaps_orphans() -> None:
    # a child holding 64 MiB starts a grandchild holding 64 MiB and leaves it running, orphaned
    code = textwrap.dedent("""
        import os, sys, time
        if os.fork() == 0:
            if os.fork() == 0:
                mine = b"g" * (64 * 2**20)
                print(os.getpid(), flush=True)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
                time.sleep(60)
            os._exit(0)
        block = b"p" * (64 * 2**20)
        time.sleep(1.0)
    """)
    m = proctree.run([sys.executable, "-c", code], pss=True)
    assert m.returncode == 0
    orphan = int(m.stdout)
    assert m.peak_rss >= 128 * 2**20 and m.peak_pss >= 128 * 2**20
    assert m.peak_processes >= 2
    assert m.leftovers == 1  # the orphan came to us (a subreaper), was killed and reaped
    assert not os.path.exists(f"/proc/{orphan}")
