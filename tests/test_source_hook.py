"""``pytest_codeeval_make_source``: a team's own inference stack, plugged in from a conftest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import humaneval_ids

# A conftest standing in for a team's inference stack: it answers the model "mystack" with the
# canonical solution of every problem but HumanEval/1 (a wrong one there), batches what it is
# told is coming, and records in stack.log what it was asked, by which process.
STACK = """
import json, os
import pytest
from pytest_codeeval.generation import SourceError

ANSWERS = {answers!r}


class Stack:
    name = "mystack (conftest)"

    def __init__(self, n, role):
        self.n, self.role = n or 1, role
        self.batched = set()

    def _log(self, **entry):
        with open({log!r}, "a") as f:
            f.write(json.dumps({{"pid": os.getpid(), "role": self.role, **entry}}) + "\\n")

    def expect(self, problems):
        new = [p.task_id for p in problems if p.task_id not in self.batched]
        if new:
            self.batched.update(new)
            self._log(batch=new)

    def available(self, problem):
        return self.programs(problem) if problem.task_id in self.batched else None

    def programs(self, problem):
        if {fail_on!r} == problem.task_id:
            raise SourceError("mystack: the inference server went away")
        completion = ANSWERS.get(problem.task_id)
        return None if completion is None else (problem.program_from_completion(completion),) * self.n

    def missing_reason(self, problem):
        return "mystack has no answer for " + problem.task_id

    def describe(self):
        return {{"model": "mystack", "n_samples": self.n, "stack": "conftest"}}


class NotASource:
    name = "broken"


@pytest.hookimpl
def pytest_codeeval_make_source(config, settings, model, role):
    if model == "mystack":
        return Stack(settings.n, role)
    if model == "broken":
        return NotASource()
    return None  # every other model: the plugin's own
"""


def stack(pytester: pytest.Pytester, records: list[dict[str, Any]], fail_on: str = "") -> Path:
    answers = {r["task_id"]: r["canonical_solution"] for r in records[:6]}
    answers["HumanEval/1"] = "    return []\n"
    log = pytester.path / "stack.log"
    pytester.makeconftest(STACK.format(answers=answers, log=str(log), fail_on=fail_on))
    return log


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_conftest_source_is_evaluated_like_the_plugins_own(pytester: pytest.Pytester, bench_dir: Path,
                                                             humaneval_records: list[dict[str, Any]],
                                                             xdist: list[str]) -> None:
    log = stack(pytester, humaneval_records)
    result = pytester.runpytest(*humaneval_ids(8), "--codeeval-model=mystack", "--codeeval-json=r.json",
                                "-rs", "-p", "no:cacheprovider", *xdist)
    # HumanEval/0..5 answered (/1 wrongly), /6 and /7 not: skipped with the source's reason
    result.assert_outcomes(passed=5, failed=1, skipped=2)
    if not xdist:  # (a controller's header is its own; workers' headers are not shown)
        result.stdout.fnmatch_lines(["codeeval: source mystack (conftest), *"])
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: mystack has no answer for HumanEval/6"], consecutive=False)
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["config"]["stack"] == "conftest" and doc["config"]["model"] == "mystack"
    assert {t: p["c"] for t, p in doc["problems"]["humaneval"].items()} == {
        f"HumanEval/{i}": int(i != 1) for i in range(6)}
    # the plugin told the source what was coming (its batches), in every judging process
    batches = [json.loads(line) for line in log.read_text().splitlines()]
    asked = {t for b in batches for t in b["batch"]}
    assert asked == {f"HumanEval/{i}" for i in range(8)}, batches
    assert {b["role"] for b in batches} == {"model"}


def test_a_source_that_fails_later_stops_the_session_with_its_line(pytester: pytest.Pytester, bench_dir: Path,
                                                                  humaneval_records: list[dict[str, Any]]) -> None:
    stack(pytester, humaneval_records, fail_on="HumanEval/2")
    result = pytester.runpytest(*humaneval_ids(6), "--codeeval-model=mystack", "--codeeval-json=r.json",
                                "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: mystack: the inference server went away" in result.stdout.str() + result.stderr.str()
    doc = json.loads((pytester.path / "r.json").read_text())  # what was judged is still written
    assert set(doc["problems"]["humaneval"]) == {"HumanEval/0", "HumanEval/1"}
    assert doc["complete"] is False and "went away" in doc["stopped"]


def test_the_hook_declining_leaves_the_plugins_own_sources(pytester: pytest.Pytester, bench_dir: Path,
                                                           humaneval_records: list[dict[str, Any]]) -> None:
    stack(pytester, humaneval_records)
    result = pytester.runpytest(*humaneval_ids(2), "--codeeval-model=reference", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    missing = pytester.runpytest(*humaneval_ids(2), "--codeeval-model=./no-such-checkpoint", "-p", "no:cacheprovider")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    assert "no-such-checkpoint" in missing.stderr.str()


def test_a_result_that_is_not_a_source_is_a_one_line_usage_error(pytester: pytest.Pytester, bench_dir: Path,
                                                                 humaneval_records: list[dict[str, Any]]) -> None:
    stack(pytester, humaneval_records)
    result = pytester.runpytest(*humaneval_ids(2), "--codeeval-model=broken", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest_codeeval_make_source returned NotASource for 'broken', which lacks "
                                 "programs, available, expect, missing_reason, describe (see *CompletionSource)"])
