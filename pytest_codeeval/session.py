"""The session's machinery, imported when the plugin wakes (:func:`pytest_codeeval.plugin.activate`):
the :class:`CodeevalPlugin` state object and its hooks, and the judge behind the
``codeeval_sandbox`` fixture. A suite that never asks for the plugin never imports this module
nor anything it imports (generation, sandbox client, gates, reports).
"""

from __future__ import annotations

import os
import platform
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import pytest_codeeval
from pytest_codeeval import benchmarks, coverage, gate, junit, settings
from pytest_codeeval.benchmarks.groundtruth import cache_root
from pytest_codeeval import report as reporting
from pytest_codeeval.generation import CompletionSource, SourceError, saving
from pytest_codeeval.generation import model as models
from pytest_codeeval.generation.decoding import Sampling
from pytest_codeeval.generation.endpoint import EndpointOptions, EndpointSource, is_endpoint
from pytest_codeeval.generation.lm import GenerationOptions, ModelSource, length_warning
from pytest_codeeval.generation.reference import ReferenceSource
from pytest_codeeval import paired
from pytest_codeeval.generation.replay import ReplaySource, parse_spec
from pytest_codeeval.generation.service import ServiceError, ServiceHost
from pytest_codeeval.plugin import IDENTITY, PROBLEM_ARG, SOURCE_FAILED, _benchmarks_named, _register_declared
from pytest_codeeval.problem import Problem, ProblemResult
from pytest_codeeval.progress import ProgressPlugin
from pytest_codeeval.runner import Runner
from pytest_codeeval.sandbox import Limits, Sandbox, SandboxError

LOOKAHEAD_ITEMS = 64  # items whose ready samples are queued in the sandbox ahead of their turn
# items a model source may batch together: every remaining one (measured on HumanEval with a
# window of 64, the window's tail made batches of 9 and 3 prompts that cost as much as 32)
GENERATION_LOOKAHEAD = 100_000
NO_SOURCE = "no completions to evaluate: pass --codeeval-model=MODEL or --codeeval-generations=FILE"
PROGRAMS = "codeeval_programs"  # user_properties key carrying the judged programs (--codeeval-save-generations)
ISOLATION_ALWAYS = (
    "one process per sample in its own session, forked by a supervisor (a subreaper) from a bare "
    "fork server; verdicts on CPU time with a wall-clock backstop; rlimits on address space, "
    "file size, open files, processes; a private temporary directory, stdin from /dev/null, a "
    "minimal environment"
)


@dataclass
class ItemJudge:
    plugin: CodeevalPlugin
    node: pytest.Item

    def check(self, problem: Problem, programs: tuple[str, ...]) -> ProblemResult:
        """Run every program against the problem's checks; fail the item unless one passes."""
        result = self.plugin.runner.evaluate(problem, tuple(programs))
        record = result.to_property()
        info = getattr(self.plugin.source, "sample_info", None)
        if info is not None:
            record["generation"] = info(problem)
        self.node.user_properties.append((reporting.PROPERTY, record))
        if self.plugin.settings.save_generations is not None:
            self.node.user_properties.append((PROGRAMS, {"benchmark": problem.benchmark, "task_id": problem.task_id,
                                                         "programs": list(programs)}))
        pair = self.plugin.gates.judge(problem, record)
        if pair is not None:  # a baseline gate: regressions fail, what the baseline failed too is xfail
            self.node.user_properties.append((gate.PAIR_PROPERTY, pair.to_property()))
            if pair.regressed:
                pytest.fail(pair.message(self.plugin.gates.baseline.label) + "\n\n"
                            + reporting.format_failure(result), pytrace=False)
            if pair.unsolved_in_both:
                pytest.xfail(pair.message(self.plugin.gates.baseline.label))
        if result.c == 0:
            pytest.fail(reporting.format_failure(result), pytrace=False)
        return result


# -- the plugin object -----------------------------------------------------------------------
class CodeevalPlugin:
    def __init__(self, config: pytest.Config, s: settings.Settings) -> None:
        self.config = config
        self.settings = s
        self.results = reporting.Results()
        self._source: CompletionSource | None = None
        self._runner: Runner | None = None
        self._positions: dict[str, int] | None = None
        self._benchmarks: dict[str, benchmarks.Benchmark] = {}
        self.is_worker = hasattr(config, "workerinput")  # an xdist worker
        self.saved_programs: dict[tuple[str, str], list[str]] = {}
        self.isolation: dict[str, Any] | None = None  # what the sandbox reported it enforces
        self.stopped: str | None = None  # why the session stopped early (Ctrl-C, -x, a failed source)
        self.selection = coverage.Selection()  # the problems selected, for coverage (controller: the workers')
        self.coverage: dict[str, coverage.Coverage] = {}  # computed at the end
        self.gates = gate.GateSession(s.fail_under, None, s.alpha, s.tolerance)
        self.gate_lines: list[str] = []
        self.other_failures = 0  # failed reports that are not a judged problem's verdict
        # xdist controller: generation services by role ("model", "baseline"), one per model copy
        self.services: dict[str, list[ServiceHost]] = {}
        self.service_stats: dict[str, list[dict[str, Any] | None]] = {}
        # xdist worker: the generation services it was told to use, by role. A remote worker
        # (--tx ssh=...) cannot reach the controller's Unix socket: it loads its own copy.
        told = getattr(config, "workerinput", {}).get("codeeval_services", {})
        self.services_in_use: dict[str, Any] = {
            role: share for role, share in told.items() if share.get("host") == socket.gethostname()}
        # the progress display of generation and execution (progress.py: its own hooks)
        self.progress = ProgressPlugin(config, s.progress, s.progress_interval)
        config.pluginmanager.register(self.progress, "codeeval-progress")

    # -- lazily built collaborators -----------------------------------------------------------
    def load_benchmark(self, name: str) -> benchmarks.Benchmark:
        if name not in self._benchmarks:  # parsed once per session, shared by source and collection
            options = {"mbpp_split": self.settings.mbpp_split}
            self._benchmarks[name] = benchmarks.load(name, self.settings.data_dir, options)
        return self._benchmarks[name]

    @property
    def source(self) -> CompletionSource:
        if self._source is None:
            raise pytest.UsageError(NO_SOURCE)
        return self._source

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            s = self.settings
            limits = Limits(memory_bytes=s.memory_mb * 1024 * 1024, output_bytes=s.output_kb * 1024,
                            file_bytes=s.file_mb * 1024 * 1024, open_files=s.open_files)
            self._runner = Runner(Sandbox(s.workers, limits, s.isolation), s.timeout)
        return self._runner

    def _make_source(self) -> CompletionSource | None:
        s = self.settings
        if s.generations:
            _register_declared(self.config.args)  # so that generations files can name their tasks
            files = [parse_spec(v, s.generations_base) for v in s.generations]
            return ReplaySource(files, self.load_benchmark, s.n, _benchmarks_named(self.config.args))
        if s.model == "reference":
            return ReferenceSource(s.n)
        return self._model_source(s.model or models.EMBEDDED, candidate=True)

    def _model_source(self, model: str, candidate: bool) -> ModelSource:
        s = self.settings
        options = GenerationOptions(
            n=s.n or 1,
            sampling=Sampling(s.temperature, s.top_p, s.top_k, s.max_new_tokens),
            seed=s.seed, batch_size=s.batch_size, chat=s.chat, prefix=s.prefix, regenerate=s.regenerate,
        )
        if is_endpoint(model):  # an OpenAI-compatible server holds the model
            if candidate:
                loading = [flag for flag, given in (("--codeeval-revision", s.revision), ("--codeeval-peft", s.peft),
                                                    ("--codeeval-precision", s.precision != "auto"),
                                                    ("--codeeval-load-in-8bit/4bit", s.quantization)) if given]
                if loading:
                    raise SourceError(f"--codeeval-model={model}: {', '.join(loading)} load local weights; "
                                      "the server decides how its model is loaded")
            # --codeeval-api-model names the candidate's served model; a baseline endpoint serves one
            endpoint = EndpointOptions(model, s.api_model if candidate else None, s.api_concurrency,
                                       s.api_timeout, s.api_retries,
                                       model_option="--codeeval-api-model" if candidate else None,
                                       flag="--codeeval-model" if candidate else "--codeeval-baseline-model")
            source: ModelSource = EndpointSource(endpoint, options, cache_root(), self._progress_line)
            source.validate()
            return source
        spec = models.ModelSpec(
            model=model, trust_remote_code=s.trust_remote_code,
            # the candidate's own loading options; the baseline model loads as published
            **(dict(revision=s.revision, peft=s.peft, precision=s.precision, quantization=s.quantization) if candidate else {}),
        )
        role = "model" if candidate else "baseline"
        share = self.services_in_use.get(role)
        source = ModelSource(spec, options, cache_root(), self._progress_line,
                             service=(share["address"], share["key"]) if share else None,
                             share=(share["share"], share["copies"]) if share else (0, 1))
        source.validate()
        return source

    def _model_baseline(self, model: str) -> paired.ModelBaseline:
        try:
            source: CompletionSource = (ReferenceSource(self.settings.n) if model == "reference"
                                        else self._model_source(model, candidate=False))
        except SourceError as e:
            raise SourceError(str(e).replace("--codeeval-model=", "--codeeval-baseline-model=")) from None
        return paired.ModelBaseline(source, Runner(self.runner.sandbox, self.settings.timeout), f"base model {model}")

    def _progress_line(self, line: str) -> None:
        """A source's message (loading, out of memory) above the progress display; quiet under
        -q and on xdist workers, whose output the controller does not show."""
        self.progress.message(line)

    # -- session ------------------------------------------------------------------------------
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Read the completion source up front: a bad file is a one-line usage error."""
        try:
            self._source = self._make_source()
            if self.settings.baseline_model is not None:
                self.gates.baseline = self._model_baseline(self.settings.baseline_model)
            if self.settings.baseline is not None:
                self.gates.baseline = gate.ResultsFileBaseline(self.settings.baseline)
                if not self.is_worker and not self.settings.baseline_force:
                    self._check_comparable(self.gates.baseline)
        except (SourceError, benchmarks.BenchmarkError, gate.GateError) as e:
            raise pytest.UsageError(str(e)) from None
        if not self.is_worker and settings.xdist_worker_count(self.config) > 0:
            self._start_services()

    def _start_services(self) -> None:
        """Under xdist, a local model lives in generation services the workers share (one per
        model copy) instead of once per worker. Started before xdist starts its workers, which
        get the addresses in their workerinput (pytest_configure_node)."""
        copies = self.settings.model_copies
        devices = _cuda_devices()
        copies = copies if copies is not None else max(1, len(devices))
        if copies == 0:
            return
        sources = {"model": self._source}
        if isinstance(self.gates.baseline, paired.ModelBaseline):
            sources["baseline"] = self.gates.baseline.source
        try:
            for role, source in sources.items():
                if getattr(source, "local_model", False):
                    self.services[role] = [ServiceHost.start(devices[i] if len(devices) >= copies else None)
                                           for i in range(copies)]
            self.progress.watch([host for hosts in self.services.values() for host in hosts])
        except ServiceError as e:
            self._stop_services()
            raise pytest.UsageError(str(e)) from None

    @pytest.hookimpl(optionalhook=True)
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """(xdist) A worker's selected problems (every worker collects the same ones)."""
        selected = getattr(node, "workeroutput", {}).get("codeeval_selected")
        if isinstance(selected, dict):
            self.selection.add(selected)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """(xdist) Tell each worker which generation service to use: worker i shares copy i % copies."""
        index = int(str(node.gateway.id).lstrip("gw") or 0)
        node.workerinput["codeeval_services"] = {
            role: {"address": hosts[index % len(hosts)].address, "key": hosts[index % len(hosts)].authkey.hex(),
                   "share": index % len(hosts), "copies": len(hosts), "host": socket.gethostname()}
            for role, hosts in self.services.items()
        }

    def _stop_services(self) -> None:
        """Read each service's counters (for the results file), then stop it."""
        for role, hosts in self.services.items():
            self.service_stats[role] = [h.stats() for h in hosts]
            for h in hosts:
                h.stop()
        self.services = {}

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._stop_services()  # a session that ended before sessionfinish

    def _check_comparable(self, baseline: gate.ResultsFileBaseline) -> None:
        """Refuse a baseline evaluated on other data or under other settings (before any work)."""
        _register_declared(self.config.args)
        named = _benchmarks_named(self.config.args)
        fingerprints = {}
        for name in sorted(baseline.problems):
            if named and name not in named:
                continue
            try:
                fingerprints[name] = self.load_benchmark(name).fingerprint
            except benchmarks.BenchmarkError:  # not loadable here: this run cannot judge it either
                continue
        reasons = baseline.incompatibilities(self._config_block(), fingerprints)
        if reasons:
            raise gate.GateError(f"--codeeval-baseline={baseline.label}: not comparable with this run: "
                                 f"{'; '.join(reasons)} (--codeeval-baseline-force compares anyway)")

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        src = self._source.name if self._source else "none"
        lines = [
            f"codeeval: source {src}, {s.workers} sandbox worker(s), isolation {s.isolation}, "
            f"memory {s.memory_mb} MiB, CPU timeout {s.timeout if s.timeout else 'per benchmark'}"
        ]
        # every model's prompt mode and why (a wrong guess halves a score without failing anything)
        lines += [f"codeeval: {source.prompt_mode_line(role)}" for role, source in self._model_sources()]
        controller = getattr(config.option, "dist", "no") != "no" and not self.is_worker
        if self._source is not None and not config.option.collectonly and not controller:
            # starting the server now costs nothing extra: it would start at collection anyway
            try:
                self.isolation = self.runner.sandbox.isolation()
                lines.append(f"codeeval: sandbox {_describe(self.isolation)}")
            except SandboxError as e:
                lines.append(f"codeeval: sandbox unavailable: {e}")
        return lines

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
            bench = self.load_benchmark(name)
        except benchmarks.DataUnavailable as e:
            # one skipped item, reported at the benchmark's own test, saying what to get
            metafunc.parametrize(PROBLEM_ARG, [pytest.param(None, marks=pytest.mark.skip(reason=str(e)))],
                                 ids=["data-missing"])
            return
        except benchmarks.BenchmarkError as e:
            raise pytest.Collector.CollectError(str(e)) from None
        if self._source is None and not self.config.option.collectonly:
            raise pytest.Collector.CollectError(NO_SOURCE)
        if bench.unavailable:  # a missing toolchain: every item skips, saying what to install
            skip = pytest.mark.skip(reason=bench.unavailable)
            metafunc.parametrize(PROBLEM_ARG, [pytest.param(p, marks=skip) for p in bench.problems],
                                 ids=[p.item_id for p in bench.problems])
            return
        metafunc.parametrize(PROBLEM_ARG, bench.problems, ids=[p.item_id for p in bench.problems])

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        problems = [p for p in map(_problem_of, session.items) if p is not None]
        self.gates.plan(problems)
        selected: dict[str, list[str]] = {}
        for p in problems:
            selected.setdefault(p.benchmark, []).append(p.task_id)
        if self.is_worker:  # the controller collects nothing: it learns the selection from here
            self.config.workeroutput["codeeval_selected"] = selected  # type: ignore[attr-defined]
        else:
            self.selection.add(selected)
        # Start the fork server now, while this process is still small: forking gets slower
        # with every heavy module imported later.
        if self.config.option.collectonly or not any(_problem_of(i) for i in session.items):
            return
        if self._source is not None:
            try:
                self.isolation = self.runner.sandbox.isolation()  # waits for the server: it is ready
            except SandboxError as e:
                raise pytest.UsageError(f"--codeeval-isolation={self.settings.isolation}: {e}") from None
            # the progress display's totals (an xdist controller learns them from the workers)
            baseline = getattr(self.gates.baseline, "source", None)
            self.progress.plan(self._window(iter(session.items)), self._source, [baseline] if baseline else [])

    # -- running ------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        """Queue the samples of this item and the next ones before this item runs."""
        if self._source is None or _problem_of(item) is None:
            return
        budget = 4 * self.settings.workers
        work = []
        generates = isinstance(self._source, ModelSource) or isinstance(self.gates.baseline, paired.ModelBaseline)
        window = self._window(self._upcoming(item, nextitem, LOOKAHEAD_ITEMS))
        if generates:  # a model source batches these prompts together
            # on an xdist worker too, every remaining item when a generation service decodes them
            # (with the other workers' while items run); a worker holding its own copy batches
            # only what it will run itself
            shared = not self.is_worker or bool(self.services_in_use)
            ahead = self._window(self._remaining(item, GENERATION_LOOKAHEAD)) if shared else window
            self._source.expect(ahead)
            if isinstance(self.gates.baseline, paired.ModelBaseline):
                self.gates.baseline.expect(ahead)
        for problem in window:
            if self.runner.is_queued(problem):
                continue
            programs = self._source.available(problem)  # never generates: only what is ready
            if programs is None:
                continue
            work.append((problem, programs))
            budget -= len(programs)
            if budget <= 0:
                break
        self.runner.prefetch(work)

    @staticmethod
    def _window(items: Iterator[pytest.Item]) -> list[Problem]:
        return [p for p, it in ((_problem_of(i), i) for i in items)
                if p is not None and not it.get_closest_marker("skip")]  # skipped: a missing toolchain

    def _upcoming(self, item: pytest.Item, nextitem: pytest.Item | None, limit: int) -> Iterator[pytest.Item]:
        """The items that will run next here (samples queued in the sandbox for them)."""
        if self.is_worker:  # xdist hands a worker its items a few at a time: look one ahead
            yield item
            if nextitem is not None:
                yield nextitem
            return
        yield from self._remaining(item, limit)

    def _remaining(self, item: pytest.Item, limit: int) -> Iterator[pytest.Item]:
        """The session's items from this one on, in collection order."""
        items = item.session.items
        if self._positions is None:
            self._positions = {it.nodeid: i for i, it in enumerate(items)}
        start = self._positions.get(item.nodeid, 0)
        yield from items[start : start + limit]

    @pytest.hookimpl(tryfirst=True)  # before the skipping plugin's: a skipped item is named too
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        problem = _problem_of(item)
        if problem is not None:
            item.user_properties.append((IDENTITY, {"benchmark": problem.benchmark, "task_id": problem.task_id}))

    # -- reporting ----------------------------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect per-problem records; under xdist these are the workers' reports, replayed."""
        props = dict(report.user_properties)
        if report.when == "call" and reporting.PROPERTY in props:
            self.results.add(props[reporting.PROPERTY])
            if PROGRAMS in props:
                saved = props[PROGRAMS]
                self.saved_programs[(saved["benchmark"], saved["task_id"])] = saved["programs"]
            self.gates.observe(props[reporting.PROPERTY], props.get(gate.PAIR_PROPERTY))
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

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """Ctrl-C, pytest.exit (a failed source) and xdist's stop (``-x`` under ``-n``) end here."""
        if self.stopped is None:
            message = str(getattr(excinfo.value, "msg", "") or excinfo.value or "").strip()
            self.stopped = message.splitlines()[0] if message else "interrupted"

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the results file (on the controller only, under xdist) and stop the sandbox."""
        try:
            self._stop_services()
            dsession = self.config.pluginmanager.get_plugin("dsession")  # xdist's stop reason
            xdist_stop = str(getattr(dsession, "shouldstop", "") or "")
            for reason in (xdist_stop, session.shouldfail, session.shouldstop):
                if reason and self.stopped is None:
                    self.stopped = str(reason)
            if self.stopped is None and exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
                self.stopped = f"pytest exit status {int(exitstatus)}"
            if not self.is_worker and xdist_stop.startswith(SOURCE_FAILED):
                session.exitstatus = pytest.ExitCode.USAGE_ERROR  # as in a serial run
            if self.is_worker:
                return
            self.coverage = self._coverage()
            decision = self._decide_gates(session)
            if self.settings.json_path is not None:
                document = self.results.to_json(self.settings.ks, self._config_block(), self._environment(),
                                                 self.coverage, self.stopped)
                document["datasets"] = self._datasets()
                if decision is not None:
                    document["gate"] = decision.to_json()
                reporting.write_json_atomically(self.settings.json_path, document)
            if self.settings.save_generations is not None and self.saved_programs:
                saving.write(self.settings.save_generations, self.saved_programs, self.load_benchmark)
        finally:
            if self._runner is not None:
                self._runner.close()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.results.benchmarks and not self.coverage and not self.gate_lines and not self.service_stats:
            return
        terminalreporter.section("codeeval")
        shown = self.results.benchmarks or self.coverage
        for line in self.results.summary_lines(self.settings.ks, self.coverage) if shown else ():
            terminalreporter.line(line)
        if self.isolation is not None:
            terminalreporter.line(f"sandbox: {_describe(self.isolation)}")
        if self.settings.json_path is not None:
            terminalreporter.line(f"results written to {self.settings.json_path}")
        if self.settings.save_generations is not None and self.saved_programs:
            terminalreporter.line(f"generations written to {self.settings.save_generations}")
        served = self.service_stats.get("model")
        if served:
            totals = _service_totals(served)
            terminalreporter.line(
                f"generation service: {len(served)} model cop{'y' if len(served) == 1 else 'ies'} for "
                f"{settings.xdist_worker_count(self.config)} workers, model loaded {totals['model_loads']} time(s), "
                f"{totals['samples_generated']} samples, {totals['tokens']} tokens, {totals['tokens_per_second']} tokens/s")
        if self.results.benchmarks:
            # a prompt mode chosen after the header (the embedded default, on first use)
            for role, source in self._model_sources():
                if not source.mode_at_start and source.settle_mode():
                    terminalreporter.line(f"prompts: {source.prompt_mode_line(role)}")
            cut = length_warning((r for b in self.results.benchmarks.values() for r in b.problems.values()),
                                 self.settings.max_new_tokens)
            if cut is not None:
                terminalreporter.line(cut, yellow=True, bold=True)
        for line in self.gate_lines:
            terminalreporter.line(line, bold=True, red="FAILED" in line, green=" passed" in line)

    def _model_sources(self) -> list[tuple[str, ModelSource]]:
        """The models this session generates with (local or served), by role."""
        baseline = getattr(self.gates.baseline, "source", None)
        return [(role, source) for role, source in (("model", self._source), ("baseline model", baseline))
                if isinstance(source, ModelSource)]

    def _coverage(self) -> dict[str, coverage.Coverage]:
        """What the run covered of every benchmark it selected or judged."""
        out = {}
        for name in sorted(set(self.selection.benchmarks()) | set(self.results.benchmarks)):
            try:
                total: int | None = len(self.load_benchmark(name).problems)
            except benchmarks.BenchmarkError:
                total = None
            out[name] = self.selection.coverage(name, total, self.results.judged(name), self.settings.n)
        return out

    def _decide_gates(self, session: pytest.Session) -> gate.Decision | None:
        """With a gate configured, the gates alone decide the exit status: unsolved problems do
        not fail the run by themselves; failures that are not a problem's verdict still do. A
        gated benchmark not judged in full, or a run stopped early, fails the gate (exit 12)."""
        if not self.gates.configured:
            return None
        decision = self.gates.decide(gate.run_counts(self.results.benchmarks), self.coverage, self.stopped)
        self.gate_lines = decision.lines()
        status = decision.exit_status or (pytest.ExitCode.TESTS_FAILED if self.other_failures else pytest.ExitCode.OK)
        session.exitstatus = status
        return decision

    # -- results file blocks ------------------------------------------------------------------
    def _config_block(self) -> dict[str, Any]:
        block = self.settings.to_config()
        if self._source is not None:
            block.update(self._source.describe())
        served = self.service_stats.get("model")
        if served is not None and isinstance(block.get("generation"), dict):
            # the workers generated nothing themselves: the service's counters are the run's
            block["generation"] = _service_totals(served)
        block["tasks"] = ",".join(sorted(self.results.benchmarks))
        stops_for = getattr(self._source, "stops_for", None)
        # under xdist the controller collects nothing: load (cached, cheap) what the workers ran
        seen = {name: self.load_benchmark(name) for name in sorted(self.results.benchmarks)}
        block["timeouts"] = {name: _timeouts(b, self.settings.timeout) for name, b in seen.items()}
        block["data_sources"] = {name: b.source for name, b in seen.items()}
        if stops_for is not None:
            block["stop_sequences"] = {name: list(stops_for(b.problems[0])) for name, b in seen.items() if b.problems}
        return block

    def _datasets(self) -> dict[str, Any]:
        """What each judged benchmark's data was: a baseline comparison checks the fingerprints."""
        out = {}
        for name in sorted(self.results.benchmarks):
            b = self.load_benchmark(name)
            out[name] = {"fingerprint": b.fingerprint, "problems": len(b.problems), "source": b.source}
        return out

    def _isolation_in_force(self) -> dict[str, Any]:
        """What the sandbox enforced. Under xdist the controller runs no sandbox: it asks one of
        its own, which starts a server with the same settings on the same machine."""
        level = self.isolation
        if level is None:
            try:
                level = self.runner.sandbox.isolation()
            except SandboxError as e:
                level = {"mode": "unknown", "error": str(e)}
        return {**level, "always": ISOLATION_ALWAYS}

    def _environment(self) -> dict[str, Any]:
        return {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "platform": platform.platform(),
            "pytest": pytest.__version__,
            "pytest_codeeval": pytest_codeeval.__version__,
            "xdist_workers": settings.xdist_worker_count(self.config),
            "cpu_count": os.cpu_count(),
            "isolation": self._isolation_in_force(),
            "limits": {
                "timeout_seconds": self.settings.timeout,
                "memory_mb": self.settings.memory_mb,
                "output_kb": self.settings.output_kb,
                "sandbox_workers": self.settings.workers,
            },
            "argv": sys.argv,
        }



def _timeouts(bench: benchmarks.Benchmark, override: float | None) -> Any:
    """The CPU-time limits a benchmark's samples ran under: one number, or their range when
    they scale per problem with the reference solution's cost (EvalPlus)."""
    values = sorted({override} if override else {p.timeout for p in bench.problems})
    if len(values) <= 1:
        return values[0] if values else None
    return {"per_problem": True, "min": values[0], "max": values[-1]}


def _describe(level: dict[str, Any]) -> str:
    """One line for the terminal: the isolation mode in force and what it amounts to."""
    mode = level.get("mode")
    fenced = "tests judged outside the sample"
    if isinstance(level.get("uids"), str):
        fenced += "; a uid per slot no other run holds"
    if isinstance(level.get("cgroups"), dict):
        fenced += "; a cgroup per slot"
    if str(level.get("landlock", "")).startswith("abstract"):
        fenced += "; Landlock scopes"
    if mode == "namespaces":
        fs = level.get("filesystem")
        files = ("an allow-list root, a private /tmp per sample" if isinstance(fs, dict)
                 else f"read-only filesystem: {level.get('read_only_root')}")
        return f"namespaces ({', '.join(level.get('namespaces', []))}; {files}; network: none; {fenced})"
    if mode == "bwrap":
        return "bwrap (a fresh interpreter per sample in namespaces of its own; read-only filesystem; network: none)"
    refused = f"; namespaces refused: {level['namespaces_refused']}" if "namespaces_refused" in level else ""
    return f"{mode} (processes only; {fenced}{refused})"


def _cuda_devices() -> list[str]:
    """The CUDA devices this process may use, found without importing torch."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in (v.strip() for v in visible.split(",")) if d and not d.startswith("-")]
    try:
        return [str(i) for i in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


def _service_totals(stats: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The generation block of the results file from the services' counters."""
    alive = [s for s in stats if s is not None]
    tokens = sum(s["tokens"] for s in alive)
    seconds = max((s["seconds"] for s in alive), default=0.0)  # the copies decode side by side
    return {
        "samples_generated": sum(s["samples_generated"] for s in alive),
        "tokens": tokens, "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 2) if seconds else 0.0,
        "model_loads": sum(s["model_loads"] for s in alive),
        "model_load_seconds": max((s["load_seconds"] for s in alive if s["load_seconds"] is not None), default=None),
        "service": alive,
    }


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


def _problem_of(item: pytest.Item) -> Problem | None:
    callspec = getattr(item, "callspec", None)
    problem = callspec.params.get(PROBLEM_ARG) if callspec is not None else None
    return problem if isinstance(problem, Problem) else None
