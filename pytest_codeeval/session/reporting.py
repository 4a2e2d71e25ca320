"""The reporting role (a serial run, an xdist controller): gather every problem's verdict from
the reports (under xdist the workers' reports, replayed), what the run selected and why it
stopped; then decide the gates, write the results file and the terminal summary.
:class:`ControllerReporting` adds what only a controller learns: the workers' selections, and
the generation services' counters."""

from __future__ import annotations

import os
import platform
import sys
from typing import TYPE_CHECKING, Any

import pytest

import pytest_codeeval
from pytest_codeeval import benchmarks, coverage, gate, settings
from pytest_codeeval import report as reporting
from pytest_codeeval.generation import saving
from pytest_codeeval.generation.lm import length_warning
from pytest_codeeval.plugin import IDENTITY, SOURCE_FAILED, _benchmarks_named, _register_declared
from pytest_codeeval.session.context import describe_isolation
from pytest_codeeval.session.judging import PROGRAMS
from pytest_codeeval.session.services import service_totals

if TYPE_CHECKING:
    from pytest_codeeval.session.context import Context
    from pytest_codeeval.session.services import Services

ISOLATION_ALWAYS = (
    "one process per sample in its own session, forked by a supervisor (a subreaper) from a bare "
    "fork server; verdicts on CPU time with a wall-clock backstop; rlimits on address space, "
    "file size, open files, processes; a private temporary directory, stdin from /dev/null, a "
    "minimal environment"
)


class Reporting:
    """The reporting role of a serial run (registered as ``codeeval-reporting``)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.results = reporting.Results()
        self.saved_programs: dict[tuple[str, str], list[str]] = {}
        self.stopped: str | None = None  # why the session stopped early (Ctrl-C, -x, a failed source)
        self.selection = coverage.Selection()  # the problems selected (a controller: the workers')
        self.coverage: dict[str, coverage.Coverage] = {}  # computed at the end
        self.gate_lines: list[str] = []
        self.other_failures = 0  # failed reports that are not a judged problem's verdict

    # -- what differs on an xdist controller ---------------------------------------------------
    def served(self) -> list[dict[str, Any] | None]:
        """The candidate's generation services' counters (none in a serial run)."""
        return []

    def stop_reason(self, session: pytest.Session) -> str | None:
        """Why the session stopped early, as pytest says it (-x, --maxfail)."""
        for reason in (session.shouldfail, session.shouldstop):
            if reason:
                return str(reason)
        return None

    # -- session start ------------------------------------------------------------------------
    def check_comparable(self, baseline: gate.ResultsFileBaseline) -> None:
        """Refuse a baseline evaluated on other data or under other settings (before any work)."""
        _register_declared(self.ctx.config.args)
        named = _benchmarks_named(self.ctx.config.args)
        fingerprints = {}
        for name in sorted(baseline.problems):
            if named and name not in named:
                continue
            try:
                fingerprints[name] = self.ctx.load_benchmark(name).fingerprint
            except benchmarks.BenchmarkError:  # not loadable here: this run cannot judge it either
                continue
        reasons = baseline.incompatibilities(self._config_block(), fingerprints)
        if reasons:
            raise gate.GateError(f"--codeeval-baseline={baseline.label}: not comparable with this run: "
                                 f"{'; '.join(reasons)} (--codeeval-baseline-force compares anyway)")

    # -- reports ------------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect per-problem records; under xdist these are the workers' reports, replayed."""
        props = dict(report.user_properties)
        if report.when == "call" and reporting.PROPERTY in props:
            self.results.add(props[reporting.PROPERTY])
            if PROGRAMS in props:
                saved = props[PROGRAMS]
                self.saved_programs[(saved["benchmark"], saved["task_id"])] = saved["programs"]
            self.ctx.gates.observe(props[reporting.PROPERTY], props.get(gate.PAIR_PROPERTY))
        else:
            if report.failed:
                self.other_failures += 1
            who = props.get(IDENTITY)
            if who is not None and (report.failed or report.skipped):  # a problem left without a verdict
                kind = coverage.SKIPPED if report.skipped else coverage.ERRORED
                self.selection.note(who["benchmark"], who["task_id"], kind, _reason(report))

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config) -> Any:
        """Show c/n per problem under -v: ``PASSED 7/10``."""
        if report.when != "call":
            return None
        record = dict(report.user_properties).get(reporting.PROPERTY)
        if record is None:
            return None
        c, n = record["c"], record["n"]
        if report.passed:
            return "passed", ".", (f"PASSED {c}/{n}", {"green": True})
        if report.failed:
            return "failed", "F", (f"FAILED {c}/{n}", {"red": True})
        return None

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C, pytest.exit (a failed source) and xdist's stop (``-x`` under ``-n``) end here."""
        if self.stopped is None:
            message = str(getattr(excinfo.value, "msg", "") or excinfo.value or "").strip()
            self.stopped = message.splitlines()[0] if message else "interrupted"

    # -- the end ------------------------------------------------------------------------------
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Decide the gates and write the results file (and the saved generations)."""
        if self.stopped is None:
            self.stopped = self.stop_reason(session)
        if self.stopped is None and exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            self.stopped = f"pytest exit status {int(exitstatus)}"
        self.coverage = self._coverage()
        decision = self._decide_gates(session)
        s = self.ctx.settings
        if s.json_path is not None:
            document = self.results.to_json(s.ks, self._config_block(), self._environment(), self.coverage, self.stopped)
            document["datasets"] = self._datasets()
            if decision is not None:
                document["gate"] = decision.to_json()
            reporting.write_json_atomically(s.json_path, document)
        if s.save_generations is not None and self.saved_programs:
            saving.write(s.save_generations, self.saved_programs, self.ctx.load_benchmark)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        served = self.served()
        if not self.results.benchmarks and not self.coverage and not self.gate_lines and not served:
            return
        ctx, s = self.ctx, self.ctx.settings
        terminalreporter.section("codeeval")
        shown = self.results.benchmarks or self.coverage
        for line in self.results.summary_lines(s.ks, self.coverage) if shown else ():
            terminalreporter.line(line)
        if ctx.isolation is not None:
            terminalreporter.line(f"sandbox: {describe_isolation(ctx.isolation)}")
        if s.json_path is not None:
            terminalreporter.line(f"results written to {s.json_path}")
        if s.save_generations is not None and self.saved_programs:
            terminalreporter.line(f"generations written to {s.save_generations}")
        if served:
            totals = service_totals(served)
            terminalreporter.line(
                f"generation service: {len(served)} model cop{'y' if len(served) == 1 else 'ies'} for "
                f"{settings.xdist_worker_count(ctx.config)} workers, model loaded {totals['model_loads']} time(s), "
                f"{totals['samples_generated']} samples, {totals['tokens']} tokens, {totals['tokens_per_second']} tokens/s")
        if self.results.benchmarks:
            # a prompt mode chosen after the header (the embedded default, on first use)
            for role, source in ctx.model_sources():
                if not source.mode_at_start and source.settle_mode():
                    terminalreporter.line(f"prompts: {source.prompt_mode_line(role)}")
            cut = length_warning((r for b in self.results.benchmarks.values() for r in b.problems.values()),
                                 s.max_new_tokens)
            if cut is not None:
                terminalreporter.line(cut, yellow=True, bold=True)
        for line in self.gate_lines:
            terminalreporter.line(line, bold=True, red="FAILED" in line, green=" passed" in line)

    def _coverage(self) -> dict[str, coverage.Coverage]:
        """What the run covered of every benchmark it selected or judged."""
        out = {}
        for name in sorted(set(self.selection.benchmarks()) | set(self.results.benchmarks)):
            try:
                total: int | None = len(self.ctx.load_benchmark(name).problems)
            except benchmarks.BenchmarkError:
                total = None
            out[name] = self.selection.coverage(name, total, self.results.judged(name), self.ctx.settings.n)
        return out

    def _decide_gates(self, session: pytest.Session) -> gate.Decision | None:
        """With a gate configured, the gates alone decide the exit status: unsolved problems do
        not fail the run by themselves; failures that are not a problem's verdict still do. A
        gated benchmark not judged in full, or a run stopped early, fails the gate (exit 12)."""
        gates = self.ctx.gates
        if not gates.configured:
            return None
        decision = gates.decide(gate.run_counts(self.results.benchmarks), self.coverage, self.stopped)
        self.gate_lines = decision.lines()
        status = decision.exit_status or (pytest.ExitCode.TESTS_FAILED if self.other_failures else pytest.ExitCode.OK)
        session.exitstatus = status
        return decision

    # -- results file blocks ------------------------------------------------------------------
    def _config_block(self) -> dict[str, Any]:
        ctx = self.ctx
        block = ctx.settings.to_config()
        if ctx.candidate is not None:
            block.update(ctx.candidate.describe())
        served = self.served()
        if served and isinstance(block.get("generation"), dict):
            # the workers generated nothing themselves: the service's counters are the run's
            block["generation"] = service_totals(served)
        block["tasks"] = ",".join(sorted(self.results.benchmarks))
        stops_for = getattr(ctx.candidate, "stops_for", None)
        # under xdist the controller collects nothing: load (cached, cheap) what the workers ran
        seen = {name: ctx.load_benchmark(name) for name in sorted(self.results.benchmarks)}
        block["timeouts"] = {name: _timeouts(b, ctx.settings.timeout) for name, b in seen.items()}
        block["data_sources"] = {name: b.source for name, b in seen.items()}
        if stops_for is not None:
            block["stop_sequences"] = {name: list(stops_for(b.problems[0])) for name, b in seen.items() if b.problems}
        return block

    def _datasets(self) -> dict[str, Any]:
        """What each judged benchmark's data was: a baseline comparison checks the fingerprints."""
        out = {}
        for name in sorted(self.results.benchmarks):
            b = self.ctx.load_benchmark(name)
            out[name] = {"fingerprint": b.fingerprint, "problems": len(b.problems), "source": b.source}
        return out

    def _environment(self) -> dict[str, Any]:
        s = self.ctx.settings
        return {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "pytest": pytest.__version__,
            "pytest_codeeval": pytest_codeeval.__version__,
            "xdist_workers": settings.xdist_worker_count(self.ctx.config),
            "cpu_count": os.cpu_count(),
            "isolation": {**self.ctx.isolation_in_force(), "always": ISOLATION_ALWAYS},
            "limits": {
                "timeout_seconds": s.timeout,
                "memory_mb": s.memory_mb,
                "output_kb": s.output_kb,
                "sandbox_workers": s.workers,
            },
            "argv": sys.argv,
        }


class ControllerReporting(Reporting):
    """The reporting role of an xdist controller, which collects and judges nothing itself."""

    def __init__(self, ctx: Context, services: Services) -> None:
        super().__init__(ctx)
        self.services = services

    def served(self) -> list[dict[str, Any] | None]:
        return self.services.stats.get("model", [])

    def stop_reason(self, session: pytest.Session) -> str | None:
        return self._xdist_stop() or super().stop_reason(session)  # xdist's stop reason first

    def _xdist_stop(self) -> str:
        dsession = self.ctx.config.pluginmanager.get_plugin("dsession")
        return str(getattr(dsession, "shouldstop", "") or "")

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """(xdist) A worker's selected problems (every worker collects the same ones)."""
        selected = getattr(node, "workeroutput", {}).get("codeeval_selected")
        if isinstance(selected, dict):
            self.selection.add(selected)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Read the services' counters (for the results file) and stop them first. A worker's
        failed source ends the session with a usage error, as in a serial run (where a gate
        decides the status, it still does: exit 12, the run stopped early)."""
        self.services.stop()
        if self._xdist_stop().startswith(SOURCE_FAILED):
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        super().pytest_sessionfinish(session, exitstatus)


def _timeouts(bench: benchmarks.Benchmark, override: float | None) -> Any:
    """The CPU-time limits a benchmark's samples ran under: one number, or their range when
    they scale per problem with the reference solution's cost (EvalPlus)."""
    values = sorted({override} if override else {p.timeout for p in bench.problems})
    if len(values) <= 1:
        return values[0] if values else None
    return {"per_problem": True, "min": values[0], "max": values[-1]}


def _reason(report: pytest.TestReport) -> str:
    """A skipped or failed report's reason, one short line."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, "Skipped: why")
        text = str(longrepr[2]).removeprefix("Skipped: ")
    else:
        lines = [line for line in report.longreprtext.strip().splitlines() if line.strip()]
        text = lines[-1] if lines else ""
    text = text.strip()
    return text if len(text) <= 160 else text[:157] + "..."
