"""What every role of a process shares (:mod:`pytest_codeeval.session`): the settings, the
benchmarks loaded once, the completion sources built at session start, the gates, the sandbox
and the progress display. It starts the session for all roles, in their order, and writes the
header."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import pytest

from pytest_codeeval import benchmarks, gate, paired, settings
from pytest_codeeval.benchmarks.groundtruth import cache_root
from pytest_codeeval.generation import CompletionSource, SourceError
from pytest_codeeval.generation import model as models
from pytest_codeeval.generation.compat import transformers_problem
from pytest_codeeval.generation.decoding import Sampling
from pytest_codeeval.generation.endpoint import EndpointOptions, EndpointSource, is_endpoint
from pytest_codeeval.generation.lm import GenerationOptions, ModelSource
from pytest_codeeval.generation.reference import ReferenceSource
from pytest_codeeval.generation.replay import ReplaySource, parse_spec
from pytest_codeeval.plugin import _benchmarks_named, _register_declared
from pytest_codeeval.progress import ProgressPlugin
from pytest_codeeval.runner import Runner
from pytest_codeeval.sandbox import Limits, Sandbox, SandboxError

if TYPE_CHECKING:
    from pytest_codeeval.session.judging import Judging
    from pytest_codeeval.session.reporting import Reporting
    from pytest_codeeval.session.services import Services

SOURCE_METHODS = ("programs", "available", "expect", "missing_reason", "describe")
NO_SOURCE = "no completions to evaluate: pass --codeeval-model=MODEL or --codeeval-generations=FILE"


class Context:
    """The run's shared state in this process, registered as ``codeeval-session`` and kept in
    ``config.stash``; the role's objects (:attr:`judging`, :attr:`reporting`, :attr:`services`)
    are set by :func:`pytest_codeeval.session.start`, None where the role has none."""

    def __init__(self, config: pytest.Config, s: settings.Settings, role: str) -> None:
        self.config = config
        self.settings = s
        self.role = role
        self.judging: Judging | None = None
        self.reporting: Reporting | None = None
        self.services: Services | None = None
        self.candidate: CompletionSource | None = None  # the source being evaluated, from session start
        self.gates = gate.GateSession(s.fail_under, None, s.alpha, s.tolerance)
        self.isolation: dict[str, Any] | None = None  # what the sandbox reported it enforces
        self._benchmarks: dict[str, benchmarks.Benchmark] = {}
        self._sandbox: Sandbox | None = None
        # an xdist worker: the generation services it was told to use, by role. A remote worker
        # (--tx ssh=...) cannot reach the controller's Unix socket: it loads its own copy.
        told = getattr(config, "workerinput", {}).get("codeeval_services", {})
        self.services_in_use: dict[str, Any] = {
            role: share for role, share in told.items() if share.get("host") == socket.gethostname()}
        # the progress display of generation and execution (progress.py: its own hooks)
        self.progress = ProgressPlugin(config, role, s.progress, s.progress_interval)
        config.pluginmanager.register(self.progress, "codeeval-progress")

    # -- shared collaborators -----------------------------------------------------------------
    def load_benchmark(self, name: str) -> benchmarks.Benchmark:
        if name not in self._benchmarks:  # parsed once per session, shared by source and collection
            options = {"mbpp_split": self.settings.mbpp_split}
            self._benchmarks[name] = benchmarks.load(name, self.settings.data_dir, options)
        return self._benchmarks[name]

    @property
    def source(self) -> CompletionSource:
        if self.candidate is None:
            raise pytest.UsageError(NO_SOURCE)
        return self.candidate

    @property
    def sandbox(self) -> Sandbox:
        """This process's sandbox (its fork server starts on first use)."""
        if self._sandbox is None:
            s = self.settings
            limits = Limits(memory_bytes=s.memory_mb * 1024 * 1024, output_bytes=s.output_kb * 1024,
                            file_bytes=s.file_mb * 1024 * 1024, open_files=s.open_files)
            self._sandbox = Sandbox(s.workers, limits, s.isolation, s.compile_batch)
        return self._sandbox

    def isolation_in_force(self) -> dict[str, Any]:
        """What the sandbox enforces: as reported when it judged, else asked now (an xdist
        controller runs no sandbox: its own starts a server with the same settings on the same
        machine)."""
        if self.isolation is None:
            try:
                self.isolation = self.sandbox.isolation()
            except SandboxError as e:
                return {"mode": "unknown", "error": str(e)}
        return self.isolation

    def model_sources(self) -> list[tuple[str, ModelSource]]:
        """The models this session generates with (local or served), by role."""
        baseline = getattr(self.gates.baseline, "source", None)
        return [(role, source) for role, source in (("model", self.candidate), ("baseline model", baseline))
                if isinstance(source, ModelSource)]

    def message(self, line: str) -> None:
        """A source's message (loading, out of memory) above the progress display; quiet under
        -q and on xdist workers, whose output the controller does not show."""
        self.progress.message(line)

    # -- session start ------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Read the completion source up front: a bad file is a one-line usage error."""
        self.start(session)

    def start(self, session: pytest.Session) -> None:
        """Build the sources, then let each role start: the reporting role refuses a baseline
        that is not comparable, the controller's services load the model (before xdist starts
        its workers, which get the services' addresses)."""
        try:
            self.candidate = self._make_source()
            if self.settings.baseline_model is not None:
                self.gates.baseline = self._model_baseline(self.settings.baseline_model)
            if self.settings.baseline is not None:
                self.gates.baseline = gate.ResultsFileBaseline(self.settings.baseline)
                if self.reporting is not None and not self.settings.baseline_force:
                    self.reporting.check_comparable(self.gates.baseline)
        except (SourceError, benchmarks.BenchmarkError, gate.GateError) as e:
            raise pytest.UsageError(str(e)) from None
        if self.services is not None:
            self.services.start()

    def _make_source(self) -> CompletionSource | None:
        s = self.settings
        if s.generations:
            _register_declared(self.config.args)  # so that generations files can name their tasks
            files = [parse_spec(v, s.generations_base) for v in s.generations]
            return ReplaySource(files, self.load_benchmark, s.n, _benchmarks_named(self.config.args))
        if s.model == "reference":
            return ReferenceSource(s.n)
        model = s.model or models.EMBEDDED
        return self._plugged_source(model, "model") or self._model_source(model, candidate=True)

    def _plugged_source(self, model: str, role: str) -> CompletionSource | None:
        """A source from a conftest or another plugin (``pytest_codeeval_make_source``)."""
        made = self.config.hook.pytest_codeeval_make_source(config=self.config, settings=self.settings,
                                                            model=model, role=role)
        if made is not None and not all(callable(getattr(made, m, None)) for m in SOURCE_METHODS):
            missing = [m for m in SOURCE_METHODS if not callable(getattr(made, m, None))]
            raise SourceError(f"pytest_codeeval_make_source returned {type(made).__name__} for {model!r}, "
                              f"which lacks {', '.join(missing)} (see pytest_codeeval.generation.CompletionSource)")
        return made

    def _model_source(self, model: str, candidate: bool) -> ModelSource:
        s = self.settings
        options = GenerationOptions(
            n=s.n or 1,
            sampling=Sampling.of(s),
            seed=s.seed, batch_size=s.batch_size, chat=s.chat, prefix=s.prefix, regenerate=s.regenerate,
            fim=s.fim, backend=s.backend,
        )
        if is_endpoint(model):  # an OpenAI-compatible server holds the model
            if candidate:
                loading = [flag for flag, given in (("--codeeval-revision", s.revision), ("--codeeval-peft", s.peft),
                                                    ("--codeeval-precision", s.precision != "auto"),
                                                    ("--codeeval-load-in-8bit/4bit", s.quantization),
                                                    (f"--codeeval-backend={s.backend}", s.backend != "transformers"))
                           if given]
                if loading:
                    raise SourceError(f"--codeeval-model={model}: {', '.join(loading)} load local weights; "
                                      "the server decides how its model is loaded")
            # --codeeval-api-model names the candidate's served model; a baseline endpoint serves one
            endpoint = EndpointOptions(model, s.api_model if candidate else None, s.api_concurrency,
                                       s.api_timeout, s.api_retries,
                                       model_option="--codeeval-api-model" if candidate else None,
                                       flag="--codeeval-model" if candidate else "--codeeval-baseline-model")
            source: ModelSource = EndpointSource(endpoint, options, cache_root(), self.message)
            source.validate()
            return source
        unsupported = transformers_problem()
        if unsupported is not None:
            raise SourceError(f"--codeeval-model={model}: {unsupported}")
        spec = models.ModelSpec(
            model=model, trust_remote_code=s.trust_remote_code,
            # the candidate's own loading options; the baseline model loads as published
            **(dict(revision=s.revision, peft=s.peft, precision=s.precision, quantization=s.quantization) if candidate else {}),
        )
        share = self.services_in_use.get("model" if candidate else "baseline")
        source = ModelSource(spec, options, cache_root(), self.message,
                             service=(share["address"], share["key"]) if share else None,
                             share=(share["share"], share["copies"]) if share else (0, 1))
        source.validate()
        return source

    def _model_baseline(self, model: str) -> paired.ModelBaseline:
        try:
            source: CompletionSource = (ReferenceSource(self.settings.n) if model == "reference"
                                        else self._plugged_source(model, "baseline")
                                        or self._model_source(model, candidate=False))
        except SourceError as e:
            raise SourceError(str(e).replace("--codeeval-model=", "--codeeval-baseline-model=")) from None
        # its own Runner over the shared sandbox (no server starts until it judges)
        return paired.ModelBaseline(source, Runner(self.sandbox, self.settings.timeout), f"base model {model}")

    # -- header and end -----------------------------------------------------------------------
    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        src = getattr(self.candidate, "name", type(self.candidate).__name__) if self.candidate else "none"
        lines = [
            f"codeeval: source {src}, {s.workers} sandbox worker(s), isolation {s.isolation}, "
            f"memory {s.memory_mb} MiB, CPU timeout {s.timeout if s.timeout else 'per benchmark'}"
        ]
        # every model's prompt mode and why (a wrong guess halves a score without failing anything)
        lines += [f"codeeval: {source.prompt_mode_line(role)}" for role, source in self.model_sources()]
        if self.judging is not None and self.candidate is not None and not config.option.collectonly:
            # starting the server now costs nothing extra: it would start at collection anyway
            try:
                self.isolation = self.sandbox.isolation()
                lines.append(f"codeeval: sandbox {describe_isolation(self.isolation)}")
            except SandboxError as e:
                lines.append(f"codeeval: sandbox unavailable: {e}")
        return lines

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Stop the sandbox after every role is done with it (samples killed, directories removed)."""
        if self._sandbox is not None:
            self._sandbox.close()


def describe_isolation(level: dict[str, Any]) -> str:
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
