"""End-to-end: pytest runs over the real benchmarks/humaneval folder, as a user runs them."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import xml.etree.ElementTree as ET
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_jsonl
from tests.reports import excerpts, quotes, report_sections

# Wrong completions of four kinds, so that outcome labels are checked too.
WRONG = {
    "failed": "    return None\n",
    "syntax_error": "    return (\n",
    "exited": "    import os; os._exit(0)\n",
    "crashed": "    import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n",
}
KINDS = list(WRONG)


def mixed_samples(records: list[dict[str, Any]], n: int = 10) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """n samples per problem: problem i has i % (n+1) right ones first, then wrong ones."""
    rows, outcomes = [], {}
    for i, r in enumerate(records):
        c = i % (n + 1)
        labels = []
        for j in range(n):
            if j < c:
                rows.append({"task_id": r["task_id"], "completion": r["canonical_solution"]})
                labels.append("passed")
            else:
                kind = KINDS[(i + j) % len(KINDS)]
                rows.append({"task_id": r["task_id"], "completion": WRONG[kind]})
                labels.append(kind)
        outcomes[r["task_id"]] = labels
    return rows, outcomes


def expected_pass_at_k(outcomes: dict[str, list[str]], k: int) -> float:
    """Independently of the plugin: enumerate every k-subset of each problem's samples."""
    total = Fraction(0)
    for labels in outcomes.values():
        subsets = list(itertools.combinations([o == "passed" for o in labels], k))
        total += Fraction(sum(any(s) for s in subsets), len(subsets))
    return float(total / len(outcomes))


def sandbox_dirs() -> set[str]:
    """The sandbox directories in this process's temporary directory (``private_tmp``: the test's own)."""
    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("codeeval-sandbox-")}


# -- the reference self-check ----------------------------------------------------------------
def test_reference_solutions_pass_every_problem(pytester: pytest.Pytester, bench_dir: Path,
                                                private_tmp: Path) -> None:
    before = sandbox_dirs()
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference",
                                "--codeeval-json=out/results.json")
    result.assert_outcomes(passed=164)
    result.stdout.re_match_lines([r"humaneval\s+164\s+164\s+164\s+1\s+1\.0000\s+-\s+-"])
    result.stdout.fnmatch_lines(["note: humaneval: pass@10, pass@100 left out: pass@k needs n >= k samples per problem (n = 1)"])
    doc = json.loads((pytester.path / "out" / "results.json").read_text())
    assert doc["humaneval"] == {"pass@1": 1.0}
    assert doc["config"]["model"] == "reference" and doc["config"]["tasks"] == "humaneval"
    assert doc["complete"] is True
    assert len(doc["problems"]["humaneval"]) == 164
    assert doc["problems"]["humaneval"]["HumanEval/0"] == {"n": 1, "c": 1, "outcomes": ["passed"]}
    env = doc["environment"]
    assert env["limits"]["memory_mb"] == 4096
    assert env["isolation"]["mode"] in ("namespaces", "fork") and "subreaper" in env["isolation"]["always"]
    assert sandbox_dirs() <= before, "the sandbox left its temporary directory behind"


# -- look-ahead ---------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [2, 3])
def test_problems_ahead_are_queued_while_an_item_runs_even_when_one_problem_fills_the_sample_budget(
        pytester: pytest.Pytester, bench_dir: Path, workers: int) -> None:
    """With n = 10 >= 4 samples per slot, the look-ahead once queued the running item's problem
    only: slots idled at each problem's tail, and another language's problem, judged as a group
    on one slot, left every other slot idle (a Java mix ran at 0.55x its two-slot speed)."""
    pytester.makeconftest("""
        import json
        from pytest_codeeval.runner import Runner

        queued, order, ahead = set(), [], []
        prefetch, evaluate = Runner.prefetch, Runner.evaluate

        def recording_prefetch(self, work):
            work = list(work)
            queued.update(problem.task_id for problem, _ in work)
            prefetch(self, work)

        def recording_evaluate(self, problem, programs):
            order.append(problem.task_id)
            ahead.append(len(queued - set(order)))  # problems queued behind the one judged now
            return evaluate(self, problem, programs)

        Runner.prefetch, Runner.evaluate = recording_prefetch, recording_evaluate

        def pytest_unconfigure(config):
            with open("lookahead.json", "w") as f:
                json.dump({"order": order, "ahead": ahead}, f)
    """)
    # a process of its own: the conftest patches the Runner class that process's plugin uses
    result = pytester.runpytest_subprocess("benchmarks/humaneval", "--codeeval-model=reference", "--codeeval-n=10",
                                           f"--codeeval-workers={workers}", "-k", "HumanEval_2", "-p",
                                           "no:cacheprovider")
    seen = json.loads((pytester.path / "lookahead.json").read_text())
    order, ahead_when_judged = seen["order"], seen["ahead"]
    result.assert_outcomes(passed=len(order))
    assert len(order) >= workers + 3
    # while each item's samples are judged, a problem per slot is queued behind it, until the end
    expected = [min(workers, len(order) - 1 - i) for i in range(len(order))]
    assert ahead_when_judged == expected


# -- replay with a known mix -----------------------------------------------------------------
@pytest.fixture
def mixed(pytester: pytest.Pytester, bench_dir: Path, humaneval_records: list[dict[str, Any]]):
    rows, outcomes = mixed_samples(humaneval_records)
    write_jsonl(pytester.path / "samples.jsonl", rows)
    return outcomes


def check_mixed_results(doc: dict[str, Any], outcomes: dict[str, list[str]]) -> None:
    assert doc["humaneval"]["pass@1"] == expected_pass_at_k(outcomes, 1)
    assert doc["humaneval"]["pass@10"] == expected_pass_at_k(outcomes, 10)
    assert "pass@100" not in doc["humaneval"]
    assert doc["summary"]["humaneval"]["k_left_out"] == [100]
    for task_id, labels in outcomes.items():
        got = doc["problems"]["humaneval"][task_id]
        assert got == {"n": 10, "c": labels.count("passed"), "outcomes": labels}, task_id


@pytest.mark.parametrize("how", ["serial", "xdist", "python -O"])
def test_replay_gives_exactly_the_known_pass_at_k(pytester: pytest.Pytester, mixed, how: str) -> None:
    args = ["benchmarks/humaneval", "--codeeval-generations=samples.jsonl", "--codeeval-json=r.json", "-p", "no:cacheprovider"]
    if how == "serial":
        result = pytester.runpytest(*args)
    elif how == "xdist":
        result = pytester.runpytest(*args, "-n", "2")
    else:
        result = pytester.run(sys.executable, "-O", "-m", "pytest", *args)
    unsolved = sum(1 for labels in mixed.values() if "passed" not in labels)
    result.assert_outcomes(passed=164 - unsolved, failed=unsolved)
    check_mixed_results(json.loads((pytester.path / "r.json").read_text()), mixed)


def test_verbose_shows_c_of_n_and_failure_shows_the_sample(pytester: pytest.Pytester, mixed) -> None:
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=samples.jsonl", "-v",
                                "-k", "HumanEval_0 or HumanEval_11 or HumanEval_5")
    result.stdout.fnmatch_lines([
        "*test_humaneval[[]HumanEval_0[]] FAILED 0/10*",
        "*test_humaneval[[]HumanEval_5[]] PASSED 5/10*",
        "*test_humaneval[[]HumanEval_11[]] FAILED 0/10*",
    ])
    # HumanEval/0's first sample is a "failed" one (kind index 0): its report shows the program
    # and the check that failed
    result.stdout.fnmatch_lines([
        "HumanEval/0: 0 of 10 samples passed (failed: 3, syntax_error: 3, exited: 2, crashed: 2)",
        "first failing sample (#0): failed: AssertionError (<tests:HumanEval/0> line *: assert *",
        "---- program ----",
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:",
        "    return None",
        "---- traceback (tail) ----",
    ])
    assert "Traceback (most recent call last):" in result.stdout.str()


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_short_summary_and_junit_message_are_one_line_on_ci(pytester: pytest.Pytester, mixed,
                                                           monkeypatch: pytest.MonkeyPatch, xdist: list[str]) -> None:
    """On CI (``CI`` set, as GitHub Actions does) pytest prints each crash message whole in the
    short test summary, and junitxml writes it as <failure message>: a failed problem's is its
    report's first line, while the FAILURES section keeps the whole report."""
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest(*(f"benchmarks/humaneval/test_humaneval.py::test_humaneval[{t}]" for t in ("HumanEval_0", "HumanEval_11")),
                                "--codeeval-generations=samples.jsonl", "-rf", "--junitxml=j.xml",
                                "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(failed=2)
    out = result.stdout.lines
    summary = out[next(i for i, x in enumerate(out) if "short test summary info" in x) + 1:]
    assert summary[-1].startswith("=") and all(x.startswith("FAILED ") for x in summary[:-1]), summary
    sections = report_sections(result.stdout.str())
    messages = {}
    for line in summary[:-1]:
        m = re.fullmatch(r"FAILED 0/10 benchmarks/humaneval/test_humaneval.py::(test_humaneval\[(HumanEval_\d+)\]) - (.*)", line)
        assert m, line
        assert re.fullmatch(rf"Failed: {m.group(2).replace('_', '/')}: 0 of 10 samples passed \(\w+: \d.*\)", m.group(3)), line
        # the report's own first line, and the report goes on
        first = next(x for x in sections[m.group(1)].strip().splitlines() if not x.startswith("[gw"))
        assert "Failed: " + first == m.group(3) and "---- program ----" in sections[m.group(1)]
        messages[m.group(2)] = m.group(3)
    assert sorted(messages) == ["HumanEval_0", "HumanEval_11"], summary
    junit = {c.get("name"): c.find("failure").get("message") for c in ET.parse(pytester.path / "j.xml").iter("testcase")}
    assert junit == {f"test_humaneval[{t}]": m for t, m in messages.items()}, junit


def test_absent_problems_are_skipped_with_a_reason(pytester: pytest.Pytester, bench_dir: Path,
                                                   humaneval_records: list[dict[str, Any]]) -> None:
    rows = [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in humaneval_records[:3]]
    write_jsonl(pytester.path / "three.jsonl", rows)
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=three.jsonl", "-rs",
                                "--codeeval-json=r.json")
    result.assert_outcomes(passed=3, skipped=161)
    result.stdout.fnmatch_lines([f"note: humaneval: 161 of 164 selected problems not judged; 161 skipped: HumanEval/3, "
                                 f"HumanEval/4, HumanEval/5, HumanEval/6, HumanEval/7 and 156 more (no samples for "
                                 f"HumanEval/3 in {pytester.path / 'three.jsonl'})",
                                 "note: humaneval: pass@k over the 3 problems judged only, not the benchmark's score"])
    result.stdout.fnmatch_lines([f"SKIPPED * no samples for HumanEval/3 in {pytester.path / 'three.jsonl'}"])
    doc = json.loads((pytester.path / "r.json").read_text())
    assert "humaneval" not in doc and doc["partial"]["humaneval"] == {"pass@1": 1.0}  # 3 problems: not the benchmark's
    assert doc["summary"]["humaneval"]["skipped"] == 161 and doc["complete"] is False


def test_bigcode_layout_is_replayed(pytester: pytest.Pytester, bench_dir: Path,
                                    humaneval_records: list[dict[str, Any]]) -> None:
    gens = [[r["prompt"] + r["canonical_solution"], r["prompt"] + WRONG["failed"]] for r in humaneval_records[:5]]
    (pytester.path / "gens.json").write_text(json.dumps(gens))
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=gens.json", "--codeeval-json=r.json")
    result.assert_outcomes(passed=5, skipped=159)
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["partial"]["humaneval"] == {"pass@1": 0.5}
    assert doc["problems"]["humaneval"]["HumanEval/4"]["outcomes"] == ["passed", "failed"]


# -- pytest's own selection and rerun tools --------------------------------------------------
def test_collect_only_lists_ids_without_slashes(pytester: pytest.Pytester, bench_dir: Path) -> None:
    result = pytester.runpytest("benchmarks/humaneval", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["benchmarks/humaneval/test_humaneval.py::test_humaneval[[]HumanEval_0[]]",
                                 "*164 tests collected*"])
    assert result.ret == 0
    ids = [line for line in result.stdout.lines if "::test_humaneval[" in line]
    assert len(ids) == 164 and not any("/" in i.split("[", 1)[1] for i in ids)


def test_k_selects_one_problem(pytester: pytest.Pytester, bench_dir: Path) -> None:
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference", "-k", "HumanEval_0")
    result.assert_outcomes(passed=1, deselected=163)
    result.stdout.re_match_lines([r"humaneval\s+1\s+1\s+1\s+1\s+1\.0000"])


def test_last_failed_reruns_only_failures_and_x_stops_early(pytester: pytest.Pytester, mixed) -> None:
    args = ["benchmarks/humaneval", "--codeeval-generations=samples.jsonl", "-k", "HumanEval_1 or HumanEval_2"]
    chosen = {t: labels for t, labels in mixed.items() if t.split("/")[1].startswith(("1", "2"))}
    failing = {t for t, labels in chosen.items() if "passed" not in labels}
    first = pytester.runpytest(*args, "-q")
    first.assert_outcomes(passed=len(chosen) - len(failing), failed=len(failing), deselected=164 - len(chosen))
    rerun = pytester.runpytest(*args, "--lf", "-q", "--codeeval-json=lf.json")
    rerun.assert_outcomes(failed=len(failing))
    doc = json.loads((pytester.path / "lf.json").read_text())
    assert set(doc["problems"]["humaneval"]) == failing
    stopped = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=samples.jsonl", "-x",
                                 "--codeeval-json=x.json", "-p", "no:cacheprovider")
    stopped.assert_outcomes(failed=1)  # HumanEval/0 has no right sample: the run stops there
    doc = json.loads((pytester.path / "x.json").read_text())
    assert doc["complete"] is False and list(doc["problems"]["humaneval"]) == ["HumanEval/0"]


# -- bad input: one line, no traceback -------------------------------------------------------
@pytest.mark.parametrize("xdist", [False, True])
def test_malformed_generations_file_is_a_one_line_usage_error(pytester: pytest.Pytester, bench_dir: Path,
                                                              xdist: bool) -> None:
    (pytester.path / "bad.jsonl").write_text('{"task_id": "HumanEval/0", "completion": "x"}\n{oops\n')
    extra = ["-n", "2"] if xdist else []
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=bad.jsonl", *extra)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {pytester.path / 'bad.jsonl'}:2: malformed line, not JSON*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--codeeval-n=0"], "ERROR: --codeeval-n: expected a positive integer, got '0'"),
        (["--codeeval-k=1,x"], "ERROR: --codeeval-k: expected a positive integer, got 'x'"),
        (["--codeeval-timeout=-1"], "ERROR: --codeeval-timeout: expected a positive number of seconds, got '-1'"),
        (["--codeeval-workers=none"], "ERROR: --codeeval-workers: expected a positive integer, got 'none'"),
        (["--codeeval-data=does-not-exist"], "ERROR: --codeeval-data: */does-not-exist is not a directory"),
        (["--codeeval-model=./my-checkpoint"], "ERROR: --codeeval-model=./my-checkpoint: no such file or directory"),
        (["--codeeval-model=reference", "--codeeval-generations=x.jsonl"], "ERROR: --codeeval-model and --codeeval-generations both given*"),
    ],
)
def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester, bench_dir: Path, args: list[str], message: str) -> None:
    result = pytester.runpytest("benchmarks/humaneval", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_ini_options_are_read_and_validated(pytester: pytest.Pytester, bench_dir: Path) -> None:
    pytester.makeini("[pytest]\ncodeeval_model = reference\ncodeeval_n = 2\ncodeeval_k = 1 2\ncodeeval_json = res.json\n")
    result = pytester.runpytest("benchmarks/humaneval", "-k", "HumanEval_0")
    result.assert_outcomes(passed=1, deselected=163)
    doc = json.loads((pytester.path / "res.json").read_text())
    assert doc["partial"]["humaneval"] == {"pass@1": 1.0, "pass@2": 1.0}  # -k: a selection's score
    assert doc["complete"] is True and doc["summary"]["humaneval"]["coverage"]["selected"] == 1
    assert doc["problems"]["humaneval"]["HumanEval/0"]["n"] == 2
    # the command line wins over the ini file
    result = pytester.runpytest("benchmarks/humaneval", "-k", "HumanEval_0", "--codeeval-n=3")
    assert json.loads((pytester.path / "res.json").read_text())["problems"]["humaneval"]["HumanEval/0"]["n"] == 3
    pytester.makeini("[pytest]\ncodeeval_timeout = soon\n")
    result = pytester.runpytest("benchmarks/humaneval")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: codeeval_timeout (ini): expected a positive number of seconds, got 'soon'"])


def test_default_source_and_unknown_benchmark(pytester: pytest.Pytester, bench_dir: Path) -> None:
    # no model and no generations: the embedded default, named in the header; collecting loads nothing
    result = pytester.runpytest("benchmarks/humaneval", "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["codeeval: source model SmolLM2-135M-Instruct*", "*164 tests collected*"])
    assert "codeeval: loading" not in result.stdout.str()
    pytester.makepyfile(test_other="""
        import pytest
        @pytest.mark.codeeval("humaneval-9000")
        def test_x(codeeval_problem): pass
    """)
    result = pytester.runpytest("test_other.py", "--codeeval-model=reference")
    result.stdout.fnmatch_lines(["unknown benchmark 'humaneval-9000'; known benchmarks: *humaneval, humaneval-cpp, *, humanevalplus, mbpp, mbpp-cpp*"])
    assert "Traceback" not in result.stdout.str()


# -- misbehaving samples end to end ----------------------------------------------------------
def test_timeouts_and_escaping_processes_are_contained(pytester: pytest.Pytester, bench_dir: Path,
                                                       humaneval_records: list[dict[str, Any]],
                                                       private_tmp: Path) -> None:
    pidfile = pytester.path / "daemon.pid"
    daemon = (
        "    import subprocess\n"
        "    p = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
        f"    open({str(pidfile)!r}, 'a').write(str(p.pid) + '\\n')\n"
        "    while True: pass\n"
    )
    rows = [{"task_id": "HumanEval/0", "completion": daemon},
            {"task_id": "HumanEval/0", "completion": "    while True:\n        pass\n"}]
    write_jsonl(pytester.path / "bad.jsonl", rows)
    before = sandbox_dirs()
    started = time.monotonic()
    pytester.path.chmod(0o777)  # fork mode, so that the sample can leave its daemon's pid here
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=bad.jsonl", "--codeeval-isolation=fork",
                                "--codeeval-timeout=0.5", "--codeeval-json=r.json", "-k", "HumanEval_0")
    result.assert_outcomes(failed=1, deselected=163)
    assert time.monotonic() - started < 30
    result.stdout.fnmatch_lines(["first failing sample (#0): timeout: timed out after 0.5 s of CPU time"])
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["problems"]["humaneval"]["HumanEval/0"]["outcomes"] == ["timeout", "timeout"]
    pid = int(pidfile.read_text().split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert sandbox_dirs() <= before


def test_samples_of_upcoming_problems_run_in_parallel(pytester: pytest.Pytester, bench_dir: Path,
                                                      humaneval_records: list[dict[str, Any]]) -> None:
    """With 2 workers, item 0's sample and item 1's sample are in flight at the same time."""
    log = pytester.path / "spans.log"
    rows = []
    for r in humaneval_records[:4]:
        program = (
            r["prompt"] + r["canonical_solution"] + "\nimport time\n"
            "t0 = time.time(); time.sleep(0.4)\n"
            f"open({str(log)!r}, 'a').write('{r['task_id']} %f %f\\n' % (t0, time.time()))\n"
        )
        rows.append({"task_id": r["task_id"], "solution": program})
    write_jsonl(pytester.path / "slow.jsonl", rows)
    log.touch(mode=0o666)  # fork mode: samples (each under its own uid, as root) append here
    log.chmod(0o666)
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=slow.jsonl",
                                "--codeeval-workers=2", "--codeeval-isolation=fork")
    result.assert_outcomes(passed=4, skipped=160)
    spans = {}
    for line in log.read_text().splitlines():
        task, start, end = line.split()
        spans[task] = (float(start), float(end))
    (s0, e0), (s1, e1) = spans["HumanEval/0"], spans["HumanEval/1"]
    assert s1 < e0 and s0 < e1, f"HumanEval/1 did not overlap HumanEval/0: {spans}"


def test_data_location_overrides_the_packaged_humaneval(pytester: pytest.Pytester, bench_dir: Path,
                                                        humaneval_records: list[dict[str, Any]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    data = pytester.path / "data" / "humaneval"
    data.mkdir(parents=True)
    write_jsonl(data / "HumanEval.jsonl", humaneval_records[:2])
    monkeypatch.setenv("CODEEVAL_DATA", str(pytester.path / "data"))
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference", "--codeeval-json=r.json")
    result.assert_outcomes(passed=2)
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["config"]["data_sources"]["humaneval"] == str(data / "HumanEval.jsonl")
    # a malformed data file is a one-line collection error naming file and line
    (data / "HumanEval.jsonl").write_text('{"task_id": "HumanEval/0"}\n')
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference")
    result.stdout.fnmatch_lines([f"{data / 'HumanEval.jsonl'}: record 1 lacks the field 'prompt'"])


@pytest.mark.parametrize("isolation", ["namespaces", "fork", "bwrap"])
def test_every_isolation_mode_runs_the_benchmark(pytester: pytest.Pytester, bench_dir: Path, isolation: str) -> None:
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference", f"--codeeval-isolation={isolation}",
                                "--codeeval-json=r.json", "-k", "HumanEval_0 or HumanEval_9")
    if result.ret == pytest.ExitCode.USAGE_ERROR:  # this machine refuses the mode: say so, once
        result.stderr.fnmatch_lines([f"ERROR: --codeeval-isolation={isolation}: *"])
        pytest.skip(f"{isolation} unavailable here")
    result.assert_outcomes(passed=12, deselected=152)
    result.stdout.fnmatch_lines([f"sandbox: {isolation} (*"])
    assert json.loads((pytester.path / "r.json").read_text())["environment"]["isolation"]["mode"] == isolation


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_each_failure_report_quotes_its_own_problems_check(pytester: pytest.Pytester, bench_dir: Path,
                                                           humaneval_records: list[dict[str, Any]],
                                                           xdist: list[str]) -> None:
    """Wrong completions for three problems: each report quotes a line of that problem's own
    tests, under the problem's own name (the tests of every problem once shared one file name,
    so every report quoted the last one registered)."""
    records = {r["task_id"]: r for r in humaneval_records}
    tasks = ["HumanEval/1", "HumanEval/2", "HumanEval/3"]
    write_jsonl(pytester.path / "wrong.jsonl", [{"task_id": t, "completion": "    return None\n"} for t in tasks])
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-generations=wrong.jsonl", "-p",
                                "no:cacheprovider", "-k", "HumanEval_1 or HumanEval_2 or HumanEval_3", *xdist)
    out = result.stdout.str()
    for task in tasks:
        line = next(x for x in out.splitlines() if x.startswith("first failing sample") and f"<tests:{task}>" in x)
        quoted = line.split(f"<tests:{task}> line ", 1)[1].split(": ", 1)[1].rstrip(")")
        assert quoted and quoted in records[task]["test"], (task, line)
        others = [records[t]["test"] for t in tasks if t != task]
        assert not all(quoted in text for text in others), (task, line)


# Per Python benchmark: two problems answered wrongly (a failed check), and one whose program
# raises (the program's own line, with a fragment of it).
PY_REPORTED: dict[str, list[tuple[str, str, str | None]]] = {
    "mbpp": [("Mbpp/11", "def remove_Occ(s, ch):\n    return None\n", None),
             ("Mbpp/12", "def sort_matrix(m):\n    return None\n", None),
             ("Mbpp/14", "def find_Volume(l, b, h):\n    x = None\n    return x.volume\n", "return x.volume")],
    "humanevalplus": [("HumanEval/0", "    return None\n", None), ("HumanEval/2", "    return None\n", None),
                      ("HumanEval/4", "    return 1 / (len(numbers) - len(numbers))\n", "return 1 / (len")],
    "mbppplus": [("Mbpp/2", "def similar_elements(a, b):\n    return None\n", None),
                 ("Mbpp/3", "def is_not_prime(n):\n    return None\n", None),
                 ("Mbpp/4", "def heap_queue_largest(nums, n):\n    return nums[len(nums) + n]\n", "return nums[len(nums) + n]")],
}
PY_REPORTED["mbpp_sanitized"] = PY_REPORTED["mbpp"]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_python_failure_reports_quote_their_own_problems_lines(pytester: pytest.Pytester, bench_dirs: Path,
                                                              data_dir: Path, xdist: list[str]) -> None:
    """MBPP, MBPP sanitized, HumanEval+ and MBPP+: each report quotes, under its own task id (and
    check stage), the line of its own checks that failed, numbered as there, and the program's
    own line where the program raised. MBPP's checks differ per problem: the quoted line is no
    other's. HumanEval+/MBPP+ call the program in batches: the report names the input."""
    from pytest_codeeval.benchmarks import load

    args = []
    for bench, rows in PY_REPORTED.items():
        write_jsonl(pytester.path / f"{bench}.jsonl", [{"task_id": t, "completion": c} for t, c, _ in rows])
        args += [f"benchmarks/{bench}", f"--codeeval-generations={bench}={bench}.jsonl"]
    result = pytester.runpytest(*args, "-p", "no:cacheprovider", *xdist)
    result.assert_outcomes(failed=3 * len(PY_REPORTED), skipped=500 + 427 + 164 + 378 - 3 * len(PY_REPORTED))
    sections = report_sections(result.stdout.str())
    for bench, rows in PY_REPORTED.items():
        problems = load(bench, data_dir).by_task_id
        stages = {t: dict(problems[t].check_stages()) for t, _, _ in rows}
        for task, completion, fragment in rows:
            problem = problems[task]
            section = sections[f"test_{bench}[{problem.item_id}]"]
            found = excerpts(section)
            assert found, section
            for kind, label, line, marked, text in found:
                assert (label == task or label.startswith(f"{task}:")) and line == marked, (bench, task, label)
                stage = label[len(task) + 1:] or "tests"
                source = problem.program_from_completion(completion) if kind == "program" else stages[task][stage]
                assert quotes(source, line, text), (bench, task, kind, line, text)
            tests_quoted = [text for kind, label, _, _, text in found if kind == "tests"]
            assert tests_quoted, (bench, task, found)
            if fragment is not None:  # the program's own line, and the test that called it
                assert any(kind == "program" and fragment in text for kind, _, _, _, text in found), (bench, task, found)
            if problem.base_tests is None:  # MBPP: the test line is this problem's alone
                others = [problems[t].tests for t, _, _ in rows if t != task]
                assert all(all(text not in o for o in others) for text in tests_quoted), (bench, task, found)
            else:  # the same checks for every problem, on this problem's data: the input is named
                detail = next(x for x in section.splitlines() if x.startswith("first failing sample"))
                assert f"base input #0: {problem.entry_point}(" in detail, (bench, task, detail)
                assert all(label == f"{task}:base" for kind, label, _, _, _ in found if kind == "tests"), found
