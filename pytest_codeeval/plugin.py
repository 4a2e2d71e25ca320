"""The pytest plugin's entry point (``pytest11``): options, activation, collection, fixtures.

Light on purpose: pytest imports it in every session of every project where the package is
installed. Until the plugin is asked for (a ``--codeeval-*`` option or ``codeeval_*`` ini value,
a benchmark on the command line) or a codeeval item is collected, it prints, starts, sets and
imports nothing more; then :func:`activate` imports :mod:`pytest_codeeval.session`, which
registers the objects of this process's role (serial, xdist controller, xdist worker) around
one :class:`~pytest_codeeval.session.Context` kept in ``config.stash``.
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_codeeval import settings

if TYPE_CHECKING:
    from pytest_codeeval.problem import Problem
    from pytest_codeeval.session import Context, ItemJudge

DECLARATIVE = "codeeval.toml"  # a custom benchmark's file (benchmarks.declarative.FILENAME)

PROBLEM_ARG = "codeeval_problem"
IDENTITY = "codeeval_problem"  # user_properties key naming an item's problem, set at setup
PROPERTY = "codeeval"  # user_properties key of a judged problem's record (report.PROPERTY)
SOURCE_FAILED = "codeeval: "  # a worker's stop reason when its completion source failed

plugin_key = pytest.StashKey["Context"]()


# -- hooks that must be module-level ---------------------------------------------------------
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register the hooks this plugin calls (:mod:`pytest_codeeval.hooks`)."""
    from pytest_codeeval import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every ``--codeeval-*`` option and its ``codeeval_*`` ini twin."""
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    """When asked (a ``--codeeval-*`` option or ``codeeval_*`` ini value, or a benchmark folder
    or ``codeeval.toml`` on the command line): resolve the settings once and register the
    plugin object that holds the run's state. Otherwise stay dormant: nothing printed, started
    or set, until a codeeval item turns up at collection (:func:`activate`)."""
    config.addinivalue_line(
        "markers", "codeeval(benchmark): run this test once per problem of the named benchmark"
    )
    # paths named on the command line may be benchmark folders (pytest's default paths are the
    # user's own: looking at them would load the benchmark registry for every unrelated run)
    named = config.args_source == pytest.Config.ArgsSource.ARGS and _benchmarks_named(config.args)
    if settings.asked(config) or named:
        activate(config)
    elif settings.process_role(config) == settings.CONTROLLER:
        # an xdist controller collects nothing: a worker's first codeeval report wakes it
        config.pluginmanager.register(_DormantController(config), "codeeval-dormant")


def activate(config: pytest.Config, session: pytest.Session | None = None) -> Context:
    """The session's context, its role's objects registered on first need. ``session``:
    activated after the session started (a codeeval item found in a suite that named none), so
    its start runs now."""
    ctx = config.stash.get(plugin_key, None)
    if ctx is not None:
        return ctx
    resolved = settings.resolve(config)
    if resolved.benchmarks:
        _collect_installed(config, resolved.benchmarks)
    if resolved.cache_dir is not None:
        # one cache location for every consumer (ground truth, models, samples) and for the
        # xdist workers this process starts
        os.environ["CODEEVAL_CACHE"] = str(resolved.cache_dir)
    from pytest_codeeval import session as roles

    ctx = roles.start(config, resolved)
    config.stash[plugin_key] = ctx
    if session is not None:
        ctx.start(session)
    return ctx


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One item per problem for tests marked ``@pytest.mark.codeeval("benchmark")``."""
    if metafunc.definition.get_closest_marker("codeeval") is not None:
        judging = activate(metafunc.config, metafunc.definition.session).judging
        assert judging is not None, "an xdist controller collects nothing"
        judging.parametrize(metafunc)


class _DormantController:
    """An xdist controller that was not asked: the first replayed report of a codeeval item
    activates the plugin, which then sees that report and every later one."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.config.stash.get(plugin_key, None) is None and any(
                key in (PROPERTY, IDENTITY) for key, _ in report.user_properties):
            reporting = activate(self.config).reporting
            assert reporting is not None  # this process is a controller
            reporting.pytest_runtest_logreport(report)


def suite_paths(names: tuple[str, ...]) -> list[Path]:
    """The installed test module folders of the named benchmarks: the package
    ``pytest_codeeval.suites`` is the repository's ``benchmarks/`` (the same files)."""
    import importlib.resources

    root = Path(str(importlib.resources.files("pytest_codeeval.suites")))
    paths = []
    for name in names:
        folder = root / name
        if not folder.is_dir():  # a registered name without a module: a packaging mistake
            raise pytest.UsageError(f"--codeeval-benchmark={name}: no test module for it in {root}")
        paths.append(folder)
    return paths


def _collect_installed(config: pytest.Config, names: tuple[str, ...]) -> None:
    """``--codeeval-benchmark``: collect the named benchmarks' installed modules. Without paths
    on the command line they replace pytest's default (testpaths, or the current directory: the
    user's own tests are not what was asked for); with paths they are added to them."""
    paths = [str(p) for p in suite_paths(names)]
    given = config.args_source == pytest.Config.ArgsSource.ARGS
    resolved = {str(Path(a.split("::")[0]).resolve()) for a in config.args} if given else set()
    config.args = ([*config.args] if given else []) + [p for p in paths if p not in resolved]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """A ``codeeval.toml`` is a custom benchmark: collect it like a test module."""
    if file_path.name == DECLARATIVE:
        return DeclarativeModule.from_parent(parent, path=file_path)
    return None


class DeclarativeModule(pytest.Module):
    """A benchmark declared in ``codeeval.toml``: a module synthesized, not imported, holding
    the same one-line test as the hand-written benchmark folders."""

    def _getobj(self) -> types.ModuleType:
        activate(self.config, self.session)  # a custom benchmark asks for the plugin
        from pytest_codeeval import benchmarks
        from pytest_codeeval.benchmarks import declarative

        try:
            decl = declarative.register_file(self.path)
        except benchmarks.BenchmarkError as e:
            raise self.CollectError(str(e)) from None
        module = types.ModuleType(f"codeeval_declared_{decl.name}")
        module.__file__ = str(self.path)

        def test(codeeval_problem: Problem, codeeval_completions: tuple[str, ...], codeeval_sandbox: ItemJudge) -> None:
            codeeval_sandbox.check(codeeval_problem, codeeval_completions)

        test.__name__ = test.__qualname__ = f"test_{decl.name}"
        test.__module__ = module.__name__
        test.pytestmark = [pytest.mark.codeeval(decl.name)]  # type: ignore[attr-defined]
        setattr(module, test.__name__, test)
        return module


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture
def codeeval_completions(request: pytest.FixtureRequest, codeeval_problem: Problem) -> tuple[str, ...]:
    """The full programs to judge for this problem, one per sample.

    Skips the item when the source has nothing for the problem (a task absent from a
    generations file). Override it in a conftest to judge programs from elsewhere.
    """
    from pytest_codeeval.generation import SourceError

    ctx = request.config.stash[plugin_key]
    source = ctx.source
    failure = None
    try:
        programs = source.programs(codeeval_problem)
    except SourceError as e:
        failure = str(e)
    if failure is not None:  # the session stops (a worker: after failing this item)
        assert ctx.judging is not None
        ctx.judging.source_failed(request.session, failure)
    if programs is None:
        pytest.skip(source.missing_reason(codeeval_problem))
    return programs


@pytest.fixture
def codeeval_sandbox(request: pytest.FixtureRequest) -> ItemJudge:
    """Judges programs in the sandbox and records the outcome on this item's report."""
    from pytest_codeeval.session import ItemJudge

    judging = request.config.stash[plugin_key].judging
    assert judging is not None
    return ItemJudge(judging, request.node)


def _register_declared(args: list[str]) -> None:
    """Register the custom benchmarks under the command line's paths before collection."""
    from pytest_codeeval import benchmarks
    from pytest_codeeval.benchmarks import declarative

    for arg in args:
        path = Path(arg.split("::")[0])
        found = [path] if path.name == declarative.FILENAME else (
            sorted(path.rglob(declarative.FILENAME)) if path.is_dir() else [])
        for toml in found:
            try:
                declarative.register_file(toml)
            except benchmarks.BenchmarkError:
                pass  # reported as this file's collection error, where pytest shows such things


def _benchmarks_named(args: list[str]) -> list[str]:
    """Benchmarks named by the command line's paths, e.g. ``benchmarks/humaneval`` -> humaneval."""
    from pytest_codeeval import benchmarks
    from pytest_codeeval.benchmarks import declarative

    known = set(benchmarks.names())
    found = []
    for arg in args:
        path = Path(arg.split("::")[0])
        found += [part for part in path.parts if part in known]
        if path.name == declarative.FILENAME or (path.is_dir() and (path / declarative.FILENAME).is_file()):
            try:
                found.append(declarative.parse(path if path.is_file() else path / declarative.FILENAME).name)
            except benchmarks.BenchmarkError:
                pass
    return found
