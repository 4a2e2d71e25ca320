"""The judging role (a serial run, an xdist worker): parametrize the benchmarks' tests, queue
each item's samples in the sandbox ahead of its turn, record every problem's verdict on its
report. :class:`WorkerJudging` differs where a worker does: it tells the controller what it
selected, sees its items a few at a time, shares the controller's generation services and
cannot end the session itself."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_codeeval import benchmarks, gate, junit, paired
from pytest_codeeval import report as reporting
from pytest_codeeval.generation.reference import ReferenceSource
from pytest_codeeval.generation.replay import ReplaySource
from pytest_codeeval.plugin import IDENTITY, PROBLEM_ARG, SOURCE_FAILED
from pytest_codeeval.problem import Problem, ProblemResult
from pytest_codeeval.runner import Runner
from pytest_codeeval.sandbox import SandboxError
from pytest_codeeval.session.context import NO_SOURCE

if TYPE_CHECKING:
    from pytest_codeeval.session.context import Context

LOOKAHEAD_ITEMS = 64  # items whose ready samples are queued in the sandbox ahead of their turn
# items a model source may batch together: every remaining one (measured on HumanEval with a
# window of 64, the window's tail made batches of 9 and 3 prompts that cost as much as 32)
GENERATION_LOOKAHEAD = 100_000
AT_HAND = (ReplaySource, ReferenceSource)  # sources whose programs cost nothing: nothing to batch
PROGRAMS = "codeeval_programs"  # user_properties key carrying the judged programs (--codeeval-save-generations)


@dataclass
class ItemJudge:
    """What the ``codeeval_sandbox`` fixture gives a test: judges one item's programs."""

    judging: Judging
    node: pytest.Item

    def check(self, problem: Problem, programs: tuple[str, ...]) -> ProblemResult:
        """Run every program against the problem's checks; fail the item unless one passes."""
        ctx = self.judging.ctx
        result = self.judging.runner.evaluate(problem, tuple(programs))
        record = result.to_property()
        info = getattr(ctx.candidate, "sample_info", None)
        if info is not None:
            record["generation"] = info(problem)
        self.node.user_properties.append((reporting.PROPERTY, record))
        if ctx.settings.save_generations is not None:
            self.node.user_properties.append((PROGRAMS, {"benchmark": problem.benchmark, "task_id": problem.task_id,
                                                         "programs": list(programs)}))
        pair = ctx.gates.judge(problem, record)
        if pair is not None:  # a baseline gate: regressions fail, what the baseline failed too is xfail
            self.node.user_properties.append((gate.PAIR_PROPERTY, pair.to_property()))
            assert ctx.gates.baseline is not None
            if pair.regressed:
                pytest.fail(pair.message(ctx.gates.baseline.label) + "\n\n"
                            + reporting.format_failure(result), pytrace=False)
            if pair.unsolved_in_both:
                pytest.xfail(pair.message(ctx.gates.baseline.label))
        if result.c == 0:
            pytest.fail(reporting.format_failure(result), pytrace=False)
        return result


class Judging:
    """The judging role of a serial run (registered as ``codeeval-judging``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._runner: Runner | None = None
        self._order: list[Problem] | None = None  # the session's problems in run order, skipped ones left out
        self._starts: dict[str, int] = {}  # an item's place in _order

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(self.ctx.sandbox, self.ctx.settings.timeout)
        return self._runner

    # -- what differs on an xdist worker ------------------------------------------------------
    def publish_selection(self, selected: dict[str, list[str]]) -> None:
        """The problems this session selected, for what the run covered."""
        assert self.ctx.reporting is not None
        self.ctx.reporting.selection.add(selected)

    def upcoming(self, item: pytest.Item, nextitem: pytest.Item | None, limit: int) -> list[Problem]:
        """The problems that will run next here (samples queued in the sandbox for them)."""
        return self._problems_from(item, limit)

    def batches_remaining(self) -> bool:
        """Whether a model source may batch every remaining item's prompts: yes where this
        process runs them all, or where a generation service decodes for every worker."""
        return True

    def source_failed(self, session: pytest.Session, failure: str) -> NoReturn:
        """The model cannot generate (it failed to load, say): every later item would fail the
        same way, so stop the session; what was judged so far is still written."""
        pytest.exit(f"ERROR: {failure}", returncode=pytest.ExitCode.USAGE_ERROR)

    # -- collection ---------------------------------------------------------------------------
    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """One item per problem of the marked test's benchmark (called by the module-level
        ``pytest_generate_tests``, which activates the plugin first)."""
        marker = metafunc.definition.get_closest_marker("codeeval")
        if marker is None:
            return
        name = marker.args[0] if marker.args else marker.kwargs.get("benchmark")
        if not isinstance(name, str):
            raise pytest.Collector.CollectError("@pytest.mark.codeeval needs a benchmark name")
        try:
            bench = self.ctx.load_benchmark(name)
        except benchmarks.DataUnavailable as e:
            # one skipped item, reported at the benchmark's own test, saying what to get
            metafunc.parametrize(PROBLEM_ARG, [pytest.param(None, marks=pytest.mark.skip(reason=str(e)))],
                                 ids=["data-missing"])
            return
        except benchmarks.BenchmarkError as e:
            raise pytest.Collector.CollectError(str(e)) from None
        if self.ctx.candidate is None and not self.ctx.config.option.collectonly:
            raise pytest.Collector.CollectError(NO_SOURCE)
        if bench.unavailable:  # a missing toolchain: every item skips, saying what to install
            skip = pytest.mark.skip(reason=bench.unavailable)
            metafunc.parametrize(PROBLEM_ARG, [pytest.param(p, marks=skip) for p in bench.problems],
                                 ids=[p.item_id for p in bench.problems])
            return
        metafunc.parametrize(PROBLEM_ARG, bench.problems, ids=[p.item_id for p in bench.problems])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        ctx = self.ctx
        problems = [p for p in map(problem_of, session.items) if p is not None]
        ctx.gates.plan(problems)
        selected: dict[str, list[str]] = {}
        for p in problems:
            selected.setdefault(p.benchmark, []).append(p.task_id)
        self.publish_selection(selected)
        # Start the fork server now, while this process is still small: forking gets slower
        # with every heavy module imported later.
        if ctx.config.option.collectonly or not problems or ctx.candidate is None:
            return
        try:
            ctx.isolation = ctx.sandbox.isolation()  # waits for the server: it is ready
        except SandboxError as e:
            raise pytest.UsageError(f"--codeeval-isolation={ctx.settings.isolation}: {e}") from None
        # the progress display's totals (an xdist controller learns them from the workers)
        baseline = getattr(ctx.gates.baseline, "source", None)
        ctx.progress.plan(self._window(iter(session.items)), ctx.candidate, [baseline] if baseline else [])

    # -- running ------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Queue the samples of this item and the next ones before this item runs."""
        source, baseline, own = self.ctx.candidate, self.ctx.gates.baseline, problem_of(item)
        if source is None or own is None:
            return
        # Queued beyond this item's own problem: at least 4 samples per worker slot and a problem
        # per slot. Another language's problem is judged as a group on one slot, so with fewer
        # problems queued than slots a slot idles; counted in samples alone, a problem of n >= 4
        # per slot samples used the whole budget and nothing was queued behind it (every slot
        # idled at each problem's tail and while pytest moved on to the next item).
        workers = self.ctx.settings.workers
        samples_ahead = problems_ahead = 0
        work = []
        window = self.upcoming(item, nextitem, LOOKAHEAD_ITEMS)
        if not isinstance(source, AT_HAND) or isinstance(baseline, paired.ModelBaseline):
            # a model source (or one a conftest plugged in) batches these prompts together
            ahead = self._problems_from(item, GENERATION_LOOKAHEAD) if self.batches_remaining() else window
            try:
                source.expect(ahead)
                if isinstance(baseline, paired.ModelBaseline):
                    baseline.expect(ahead)
            except Exception:  # noqa: BLE001 - said by the item's own programs() call, which stops the run
                return
        for problem in window:
            queued = self.runner.queued_samples(problem)
            if queued is None:
                try:
                    programs = source.available(problem)  # never generates: only what is ready
                except Exception:  # noqa: BLE001 - said by the item's own programs() call, which stops the run
                    break
                if programs is None:
                    continue
                work.append((problem, programs))
                queued = len(programs)
            if problem is not own:
                samples_ahead += queued
                problems_ahead += 1
                if samples_ahead >= 4 * workers and problems_ahead >= workers:
                    break
        self.runner.prefetch(work)

    @staticmethod
    def _window(items: Iterator[pytest.Item]) -> list[Problem]:
        return [p for p, it in ((problem_of(i), i) for i in items)
                if p is not None and not it.get_closest_marker("skip")]  # skipped: a missing toolchain

    def _problems_from(self, item: pytest.Item, limit: int) -> list[Problem]:
        """The problems of the session's items from this one on (those not skipped), in run
        order: a slice of a list made once, since this runs before every item (recomputed per
        item, it made ReCode's 29,220 items cost minutes of quadratic look-ups)."""
        if self._order is None:
            self._order = []
            for it in item.session.items:
                self._starts[it.nodeid] = len(self._order)  # its own problem's place, or the next one's
                p = problem_of(it)
                if p is not None and not it.get_closest_marker("skip"):
                    self._order.append(p)
        start = self._starts.get(item.nodeid, 0)
        return self._order[start : start + limit]

    @pytest.hookimpl(tryfirst=True)  # before the skipping plugin's: a skipped item is named too
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        problem = problem_of(item)
        if problem is not None:
            item.user_properties.append((IDENTITY, {"benchmark": problem.benchmark, "task_id": problem.task_id}))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """--junitxml writes the teardown report's properties: give it scalars, not dicts. A
        failed problem's crash message is its report's first line: pytest prints that message
        whole in the short test summary when it runs on CI (``CI`` set) and junitxml writes it
        as the ``message`` attribute; the full report stays in the FAILURES section."""
        report = yield
        if report.when == "teardown":
            report.user_properties = junit.flat_properties(report.user_properties)
        elif report.when == "call" and report.failed and reporting.PROPERTY in dict(report.user_properties):
            crash = getattr(report.longrepr, "reprcrash", None)
            if crash is not None and isinstance(crash.message, str):
                crash.message = crash.message.split("\n", 1)[0]
        return report

    @pytest.hookimpl(trylast=True)  # after the reporting role, which may still ask the sandbox
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._runner is not None:
            self._runner.close()
        # an endpoint's request queue has the whole look-ahead window queued: after -x, a failure
        # or an in-process run (pytester), nothing more should reach the server
        for _, source in self.ctx.model_sources():
            source.close()


class WorkerJudging(Judging):
    """The judging role of an xdist worker."""

    def publish_selection(self, selected: dict[str, list[str]]) -> None:
        # the controller collects nothing: it learns the selection from here (pytest_testnodedown)
        self.ctx.config.workeroutput["codeeval_selected"] = selected  # type: ignore[attr-defined]

    def upcoming(self, item: pytest.Item, nextitem: pytest.Item | None, limit: int) -> list[Problem]:
        # xdist hands a worker its items a few at a time: look one ahead
        return self._window(iter([item] if nextitem is None else [item, nextitem]))

    def batches_remaining(self) -> bool:
        # every remaining item when a generation service decodes them (with the other workers'
        # while items run); a worker holding its own copy batches only what it will run itself
        return bool(self.ctx.services_in_use)

    def source_failed(self, session: pytest.Session, failure: str) -> NoReturn:
        # pytest.exit would leave xdist an unfinished item (an internal error): fail this one
        # and stop; the controller ends the session with the same line and a usage error
        session.shouldstop = f"{SOURCE_FAILED}{failure}"
        pytest.fail(f"ERROR: {failure}", pytrace=False)


def problem_of(item: pytest.Item) -> Problem | None:
    """The benchmark problem an item runs, if it is a codeeval item."""
    callspec = getattr(item, "callspec", None)
    problem = callspec.params.get(PROBLEM_ARG) if callspec is not None else None
    return problem if isinstance(problem, Problem) else None
