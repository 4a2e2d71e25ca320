"""The run's progress on pytest's terminal: generation and execution, each with its total,
percentage, ETA and samples/s (generation also tokens/s).

Two meters:

* **generation**: the distinct samples the selected problems need (problems x n; one per
  problem when greedy, since it stands for all n; problems sharing a prompt share them), ready
  when cached before the run or generated in it; tokens/s from the sources' own counters
  (tokens over the seconds spent generating). Shown only when something has to be generated.
* **execution**: the samples to judge (known after collection: n per problem, or what a
  generations file holds), counted as each problem's verdict is reported.

Where and how (:class:`Style`):

* on a terminal: live rows below pytest's output, one per meter (tqdm's meter and bar),
  redrawn at most every :data:`LIVE_REFRESH` seconds. pytest's own output is never overwritten:
  while rows are shown, the terminal writer's ``write`` erases them first and draws them again
  after, below the line pytest is on (cursor save and restore), and pytest's report hooks run
  with the rows held off. At the end the rows are erased and one line per meter is left
  before pytest's summary.
* elsewhere (CI logs, pipes), with ``--codeeval-progress=lines``, or with ``-s`` in a serial
  run (a test's own prints would land in the rows): one plain line every
  ``--codeeval-progress-interval`` seconds (10) and the final lines; no carriage returns.
* ``-q``: the compact form, one row or line for both meters, without bars or messages;
  ``-qq`` or ``--codeeval-progress=off``: nothing.

Under xdist the controller draws: execution from the workers' replayed reports, generation
from the generation services it hosts (:class:`~pytest_codeeval.generation.service.ServiceHost`,
polled by a thread) and, when workers hold their own model or talk to a server, from the
counters each worker puts on its setup and call reports (:data:`WORKER_PROPERTY`). Workers draw
nothing.

:class:`Display` holds the meters and decides what to draw and when (no pytest);
:class:`TerminalScreen` draws on pytest's terminal writer; :class:`ProgressPlugin` is the
pytest side that the codeeval plugin registers and feeds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from pytest_codeeval import settings
from pytest_codeeval import report as reporting
from pytest_codeeval.problem import Problem

LIVE_REFRESH = 0.2  # seconds between redraws of the live rows, at most
POLL_SECONDS = 1.0  # seconds between the xdist controller's polls of its generation services
WORKER_PROPERTY = "codeeval_progress"  # user_properties key: a worker's plan and counters
GENERATION, EXECUTION = "generation", "execution"

SAVE, RESTORE = "\x1b7", "\x1b8"  # DEC cursor save / restore (with attributes)
ERASE_BELOW = SAVE + "\x1b[1B\r\x1b[J" + RESTORE  # the rows under the cursor's line, cleared


# -- what is drawn and when (no pytest) ---------------------------------------------------------
@dataclass(frozen=True)
class Style:
    mode: str = "lines"  # live | lines | off
    compact: bool = False  # -q: one row or line for both meters, no bars
    interval: float = 10.0  # seconds between plain lines
    ascii: bool = False  # bars without block characters (a terminal that cannot encode them)
    messages: bool = True  # lines such as "codeeval: loading MODEL ..." (not under -q)


@dataclass
class Meter:
    """Samples done of a total. The elapsed time runs from the run's start. The rate: over the
    seconds the sources spent generating when they count them (``busy_seconds``: a model's
    loading is not in them, and a batch's samples, which finish together, are spread over its
    whole decode), else from the first progress on; ``initial`` samples were ready before the
    run (cached) and count as done but not in the rate."""

    label: str
    total: int | None = None
    done: int = 0
    initial: int = 0
    tokens: int | None = None
    busy_seconds: float = 0.0
    origin: float | None = None
    first: tuple[float, int] | None = None  # (clock, done) when done first moved past initial
    finished: float | None = None  # clock when done reached total

    @property
    def shown(self) -> bool:
        """Worth a row: something to do or done in this run."""
        return (self.total is not None and self.total > self.initial) or self.done > self.initial

    @property
    def cached_only(self) -> bool:
        return bool(self.total) and self.total == self.initial == self.done

    def move(self, done: int, now: float) -> None:
        if self.total is not None:
            done = min(done, self.total)
        if done > self.initial and self.first is None:
            self.first = (now, done)
        self.done = done
        complete = self.total is not None and done >= self.total and self.first is not None
        self.finished = (self.finished or now) if complete else None

    def _numbers(self, now: float) -> tuple[float, float | None]:
        end = self.finished if self.finished is not None else now
        elapsed = max(0.0, end - (self.origin if self.origin is not None else end))
        rate = None
        if self.busy_seconds > 0 and self.done > self.initial:
            rate = (self.done - self.initial) / self.busy_seconds
        elif self.first is not None and end > self.first[0] and self.done > self.first[1]:
            rate = (self.done - self.first[1]) / (end - self.first[0])
        elif elapsed > 0 and self.done > self.initial:  # one step so far: the run's average
            rate = (self.done - self.initial) / elapsed
        return elapsed, rate

    def _postfix(self, cached: bool) -> str:
        parts = []
        if self.tokens and self.busy_seconds > 0:
            parts.append(f"{self.tokens / self.busy_seconds:.1f} tokens/s")
        if cached and self.initial:
            parts.append(f"{self.initial} cached")
        return ", ".join(parts)

    def _meter(self, now: float, **kw: Any) -> str:
        from tqdm import tqdm  # a dependency for this: tested, familiar meters

        elapsed, rate = self._numbers(now)
        # rate 0 shows "?" (tqdm would divide all samples by the elapsed time, a model's loading too)
        return str(tqdm.format_meter(self.done, self.total or None, elapsed, unit=" samples", rate=rate or 0.0,
                                     initial=self.initial, **kw))

    def row(self, now: float, width: int, ascii: bool = False) -> str:
        """A live row: tqdm's meter with its bar, ``width`` columns at most."""
        if self.total:
            form = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
        else:
            form = "{desc}: {n_fmt} samples [{elapsed}, {rate_noinv_fmt}{postfix}]"
        return self._meter(now, ncols=width, prefix=f"codeeval {self.label}", ascii=ascii, bar_format=form,
                           postfix=self._postfix(cached=False) or None)[:width]

    def text(self, now: float) -> str:
        """``generation 40/164 (24%) [00:12<00:38, 3.20 samples/s, 412.0 tokens/s]``"""
        if not self.total:
            form = "{desc} {n_fmt} samples [{elapsed}, {rate_noinv_fmt}{postfix}]"
        else:
            form = "{desc} {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_noinv_fmt}{postfix}]"
        return self._meter(now, prefix=self.label, bar_format=form, postfix=self._postfix(cached=True) or None)

    def compact(self, now: float) -> str:
        """``generation 40/164 24% ETA 00:38``, or ``... 100% in 02:39`` when done."""
        if not self.total:
            form = "{desc} {n_fmt} samples"
        elif self.finished is not None:
            form = "{desc} {n_fmt}/{total_fmt} {percentage:.0f}% in {elapsed}"
        else:
            form = "{desc} {n_fmt}/{total_fmt} {percentage:.0f}% ETA {remaining}"
        return self._meter(now, prefix=self.label, bar_format=form)


class Screen(Protocol):
    """Where a :class:`Display` draws."""

    lock: Any

    def width(self) -> int: ...

    def show(self, rows: list[str]) -> None:
        """Live rows below the output, replacing those shown."""

    def hide(self) -> None:
        """Remove the live rows (for good: the display is closing)."""

    def line(self, text: str, final: bool = False) -> None:
        """A line in the output, above any live rows."""


class Display:
    """The generation and execution meters, and when to draw them on a :class:`Screen`."""

    def __init__(self, screen: Screen, style: Style, clock: Callable[[], float] = time.monotonic) -> None:
        self.screen = screen
        self.style = style
        self.clock = clock
        self.lock = screen.lock  # one lock: pytest's writes, the controller's poller, these meters
        self.meters = {GENERATION: Meter(GENERATION), EXECUTION: Meter(EXECUTION)}
        self.started: float | None = None
        self._last: float | None = None  # clock of the last row drawn or line written
        self.closed = False

    def start(self) -> None:
        with self.lock:
            if self.started is None:
                self.started = self.clock()
                for m in self.meters.values():
                    m.origin = self.started

    def plan(self, name: str, total: int | None, initial: int = 0) -> None:
        """The meter's total, and how many of it were ready before the run."""
        with self.lock:
            self.start()
            m = self.meters[name]
            m.total, m.initial = total, min(initial, total) if total is not None else initial
            m.move(max(m.done, m.initial), self.clock())

    def set(self, name: str, done: int, tokens: int | None = None, seconds: float | None = None) -> None:
        """``done`` so far; for generation also the sources' tokens and seconds spent generating."""
        with self.lock:
            self.start()
            m = self.meters[name]
            if tokens is not None:
                m.tokens = tokens
            if seconds is not None:
                m.busy_seconds = seconds
            m.move(done, self.clock())

    def add(self, name: str, samples: int) -> None:
        with self.lock:
            self.set(name, self.meters[name].done + samples)

    def tick(self, force: bool = False) -> None:
        """Draw if it is time: live rows at most every LIVE_REFRESH seconds, plain lines every
        ``interval`` seconds (the first at once)."""
        with self.lock:
            if self.closed or self.style.mode == "off":
                return
            shown = [m for m in self.meters.values() if m.shown]
            if not shown:
                return
            now = self.clock()
            every = LIVE_REFRESH if self.style.mode == "live" else self.style.interval
            if not force and self._last is not None and now - self._last < every:
                return
            self._last = now
            if self.style.mode == "live":
                self.screen.show(self.rows(shown, now))
            else:
                self.screen.line(self.line(shown, now))

    def rows(self, shown: list[Meter], now: float) -> list[str]:
        width = max(20, self.screen.width() - 1)  # the last column would wrap on some terminals
        if self.style.compact:
            return [self.line(shown, now)[:width]]
        return [m.row(now, width, self.style.ascii) for m in shown]

    def line(self, shown: list[Meter], now: float) -> str:
        texts = [m.compact(now) if self.style.compact else m.text(now) for m in shown]
        return "codeeval: " + " | ".join(texts)

    def message(self, text: str) -> None:
        """A line such as ``codeeval: loading MODEL ...``, shown unless -q."""
        with self.lock:
            if self.style.messages and not self.closed:
                self.screen.line(text)

    def close(self) -> None:
        """Erase the live rows and leave the final lines (one per meter; -q: one for both)."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            if self.style.mode == "off":
                return
            self.screen.hide()
            now = self.clock()
            shown = [m for m in self.meters.values() if m.shown]
            if self.style.compact:
                if shown:
                    self.screen.line(self.line(shown, now), final=True)
                return
            for m in self.meters.values():
                if m.shown:
                    self.screen.line(f"codeeval: {m.text(now)}", final=True)
                elif m.label == GENERATION and m.cached_only:
                    self.screen.line(f"codeeval: generation: all {m.total} samples from the cache", final=True)


# -- drawing on pytest's terminal writer ----------------------------------------------------------
class TerminalScreen:
    """Draws through pytest's terminal writer (``config.get_terminal_writer()``), so that pytest
    and the display share one stream and one notion of the current line.

    Live rows sit below the line pytest is writing. While they are shown the writer's ``write``
    is wrapped: it erases them, writes, and draws them again below wherever pytest's cursor is
    now; :meth:`hold` keeps them off for a whole report hook instead. Lines are written whole,
    never with a carriage return. Inside an item (generation runs in its setup) pytest captures
    the output: it is lifted for each write, as for pytest's own live logging.
    """

    def __init__(self, config: pytest.Config, live: bool) -> None:
        self.tw = config.get_terminal_writer()
        self.reporter = config.pluginmanager.get_plugin("terminalreporter")
        self.capman = config.pluginmanager.get_plugin("capturemanager")
        self.verbose = config.option.verbose
        self.live = live
        self.lock = threading.RLock()
        self._rows: list[str] = []  # rows wanted
        self._drawn = False  # rows on the screen now
        self._stale = False  # the rows on the screen are not the rows wanted
        self._held = 0
        self._write: Callable[..., None] | None = None  # the writer's own write, while wrapped

    # -- the wrapped writer ---------------------------------------------------------------------
    def attach(self) -> None:
        """Route the writer's writes through the lock (and, live, around the rows)."""
        with self.lock:
            if self._write is not None:
                return
            original = self._write = self.tw.write

            def write(msg: str, *, flush: bool = False, **markup: bool) -> None:
                with self.lock:
                    if msg:
                        self._erase()  # held: drawn again when the hold ends
                    original(msg, flush=flush, **markup)
                    if msg and not self._held and self._rows:
                        self._draw()
                        if flush:
                            self.tw.flush()

            self.tw.write = write  # type: ignore[method-assign]

    def detach(self) -> None:
        with self.lock:
            if self._write is not None and "write" in vars(self.tw):
                del self.tw.write  # the class's own method again
            self._write = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        """While held, a write erases the rows and they stay off: pytest writes a report's
        output whole. They are drawn again when the hold ends (if erased or changed)."""
        with self.lock:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
                if self._held == 0 and self._rows and (self._stale or not self._drawn):
                    self._uncaptured(self._draw_and_flush)

    # -- Screen -------------------------------------------------------------------------------------
    def width(self) -> int:
        """The width pytest lays its lines out in (taken at its start: inside an item the
        output is captured and the terminal's width cannot be asked)."""
        width = getattr(self.reporter, "_screen_width", None)
        return int(width) if isinstance(width, int) and width > 0 else int(self.tw.fullwidth)

    def show(self, rows: list[str]) -> None:
        with self.lock:
            self.attach()
            if rows == self._rows and self._drawn:
                return
            self._rows, self._stale = rows, True
            if not self._held:
                self._uncaptured(self._draw_and_flush)

    def hide(self) -> None:
        with self.lock:
            self._rows = []
            if self._drawn:
                self._uncaptured(lambda: (self._erase(), self.tw.flush()))
            self.detach()

    def line(self, text: str, final: bool = False) -> None:
        def write() -> None:
            if (final or self.verbose >= 1) and _main_thread():
                # pytest's own way: its current line ended (and its prefix written again if needed)
                if self.reporter is not None and self.reporter.currentfspath:
                    self.reporter.ensure_newline()
                elif self._column():
                    self.tw.line()
                self.tw.line(text)
                self.tw.flush()
            else:
                # a line of its own, and the dots go on below it (no path printed again)
                self.tw.write(("\n" if self._column() else "") + text + "\n", flush=True)

        with self.hold():
            self._uncaptured(write)

    # -- terminal sequences ---------------------------------------------------------------------
    def _raw(self, text: str) -> None:
        raw = getattr(self.tw, "write_raw", None)
        if raw is not None:
            raw(text)
        else:  # pragma: no cover - pytest before write_raw
            self.tw._file.write(text)

    def _column(self) -> int:
        """The column of pytest's cursor, from what the writer wrote on its current line."""
        current = getattr(self.tw, "_current_line", None)
        if not isinstance(current, str):
            return max(0, int(self.tw.width_of_current_line))
        current = current.rsplit("\r", 1)[-1]
        try:
            from _pytest._io.wcwidth import wcswidth

            width = wcswidth(current)
        except ImportError:  # pragma: no cover
            width = -1
        return width if width >= 0 else len(current)

    def _erase(self) -> None:
        if self._drawn:
            self._raw(ERASE_BELOW)
            self._drawn = False

    def _draw(self) -> None:
        if not self._rows:
            return
        sequence = draw_sequence(self._rows, self._column(), self.width())
        if sequence is None:
            return
        self._erase()
        self._raw(sequence)
        self._drawn, self._stale = True, False

    def _draw_and_flush(self) -> None:
        self._draw()
        self.tw.flush()

    def _uncaptured(self, write: Callable[[], Any]) -> None:
        """Write past pytest's capture (generation runs inside an item's setup); only the main
        thread captures, and only it may lift the capture."""
        if self.capman is not None and _main_thread():
            with self.capman.global_and_fixture_disabled():
                write()
        else:
            write()


def draw_sequence(rows: Sequence[str], column: int, width: int) -> str | None:
    """Terminal output that shows ``rows`` on the lines below the cursor and puts the cursor
    back at ``column`` of its line: newlines make room (scrolling at the screen's bottom), the
    cursor goes back up, is saved, each row is written on a line of its own and cleared to its
    end, and the cursor is restored. None when the cursor's column is ambiguous (a line that
    filled the screen's width exactly: the terminal's pending wrap)."""
    if width > 0 and column >= width:
        if column % width == 0:
            return None
        column %= width
    n = len(rows)
    place = "\n" * n + f"\x1b[{n}A\r" + (f"\x1b[{column}C" if column else "")
    body = "".join(f"\x1b[1B\r{row}\x1b[K" for row in rows)
    return place + SAVE + body + RESTORE


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def style_for(config: pytest.Config, choice: str, interval: float) -> Style:
    """``--codeeval-progress`` (auto | lines | off), the verbosity and the terminal decide."""
    verbose = int(config.option.verbose)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if choice == "off" or verbose <= -2 or reporter is None:
        return Style("off", messages=verbose >= 0 and reporter is not None)
    serial = settings.process_role(config) == settings.SERIAL
    live = (choice == "auto" and bool(reporter.isatty) and os.environ.get("TERM") != "dumb"
            and not (serial and getattr(config.option, "capture", "fd") == "no"))
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return Style("live" if live else "lines", compact=verbose == -1, interval=interval,
                 ascii=encoding not in ("utf8", "utf16", "utf32"), messages=verbose >= 0)


# -- the pytest side ------------------------------------------------------------------------------
class ProgressPlugin:
    """Registered by the codeeval plugin; it calls :meth:`plan` after collection,
    :meth:`message` for its lines, :meth:`watch` with the generation services it started."""

    def __init__(self, config: pytest.Config, role: str, choice: str = "auto", interval: float = 10.0) -> None:
        self.config = config
        self.choice, self.interval = choice, interval
        self.is_worker = role == settings.WORKER
        self.is_controller = role == settings.CONTROLLER
        self.style = Style("off", messages=False)
        self.screen: TerminalScreen | None = None
        self.display: Display | None = None  # the meters, when drawn (else None)
        self._set_up = False
        # a worker tells the controller its plan and counters unless the display is off
        self.reporting = self.is_worker and choice != "off" and config.option.verbose > -2
        self.sources: list[Any] = []  # model sources generating in this process
        self.ready = 0  # samples ready (cached) when planned
        self.planned: dict[str, Any] | None = None  # this process's plan (serial, worker)
        self.services: list[Any] = []  # controller: ServiceHost objects to poll
        self.service_stats: list[dict[str, Any] | None] = []
        self.workers: dict[str, dict[str, Any]] = {}  # controller: each worker's latest numbers
        self.loads_seen = 0
        self._started = False
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()

    def _setup(self) -> None:
        """Choose the style and build the display on first need: the terminal reporter is
        registered after the codeeval plugin's pytest_configure. A worker draws nothing: the
        controller does not show its output."""
        if self._set_up:
            return
        self._set_up = True
        if self.is_worker:
            return
        self.style = style_for(self.config, self.choice, self.interval)
        if self.style.mode != "off" or self.style.messages:
            self.screen = TerminalScreen(self.config, live=self.style.mode == "live")
        if self.style.mode != "off":
            assert self.screen is not None
            self.display = Display(self.screen, self.style)

    # -- what the codeeval plugin calls -----------------------------------------------------------
    def message(self, line: str) -> None:
        """A line such as ``codeeval: loading MODEL ...`` (not under -q, nor on workers)."""
        self._setup()
        if self.display is not None:
            self.display.message(line)
        elif self.screen is not None and self.style.messages:  # --codeeval-progress=off
            self.screen.line(line)

    def plan(self, problems: Sequence[Problem], source: Any, generators: Sequence[Any] = ()) -> None:
        """After collection (serial run or worker): the samples to judge, and for each model
        source the samples to generate and those ready."""
        self._setup()
        execution = sum(samples_of(source, p) for p in problems)
        total = ready = 0
        generating = False
        for g in dict.fromkeys([source, *generators]):  # each source once
            counts = g.plan(problems) if callable(getattr(g, "plan", None)) else None
            if counts is None:
                continue
            generating = True
            total, ready = total + counts[0], ready + counts[1]
            self.sources.append(g)
            if self.display is not None:
                g.on_progress = self._generated
        self.ready = ready
        self.planned = {"execution": execution, "generation": [total, ready] if generating else None}
        if self.display is not None:
            self.display.plan(EXECUTION, execution)
            if generating:
                self.display.plan(GENERATION, total, ready)

    def watch(self, services: Sequence[Any]) -> None:
        """(xdist controller) The generation services whose counters are the run's generation."""
        self.services = list(services)

    # -- hooks ---------------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Any:
        self._setup()
        self._start()
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> Any:
        with self._held():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> Any:
        with self._held():
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Any:
        self._setup()
        if self.display is None:
            return (yield)
        with self._held():  # pytest writes the report's letter or line whole, then the rows
            result = yield
            self._start()
            self._observe(report)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        report = yield
        if self.reporting and self.planned is not None and report.when in ("setup", "call"):
            report.user_properties.append((WORKER_PROPERTY, self._worker_numbers()))
        return report

    @pytest.hookimpl(tryfirst=True)  # before the codeeval plugin stops the generation services
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.close()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------
    @contextmanager
    def _held(self) -> Iterator[None]:
        if self.screen is None or self.display is None or self.display.closed:
            yield
            return
        with self.screen.hold():
            yield

    def _start(self) -> None:
        if self.display is None or self._started:
            return
        self._started = True
        self.display.start()
        assert self.screen is not None
        self.screen.attach()
        if self.is_controller and self._poller is None:
            self._poller = threading.Thread(target=self._poll, name="codeeval-progress", daemon=True)
            self._poller.start()

    def _generated(self) -> None:
        """A sample generated in this process (serial): the meter moves, drawn if it is time."""
        display = self.display
        if display is not None and not display.closed:
            self._refresh_generation()
            display.tick()

    def _observe(self, report: pytest.TestReport) -> None:
        assert self.display is not None
        props = dict(report.user_properties)
        numbers = props.get(WORKER_PROPERTY)
        if isinstance(numbers, dict):  # on the controller: a worker's plan and counters
            self.workers[str(numbers.get("worker"))] = numbers
            self.display.plan(EXECUTION, max(int(w.get("execution", 0)) for w in self.workers.values()))
            plans = [w["generation"] for w in self.workers.values() if w.get("generation")]
            if plans:
                self.ready = min(p[1] for p in plans)
                self.display.plan(GENERATION, max(p[0] for p in plans), self.ready)
        record = props.get(reporting.PROPERTY)
        if report.when == "call" and isinstance(record, dict):
            self.display.add(EXECUTION, int(record.get("n", 0)))
        self._refresh_generation()
        self.display.tick()

    def _refresh_generation(self) -> None:
        """The generation meter from this process's sources, the services' counters and the
        workers' reports."""
        assert self.display is not None
        generated = tokens = 0
        seconds: list[float] = []
        for s in self.sources:
            p = s.progress
            generated, tokens = generated + p.samples_generated, tokens + p.tokens
            seconds.append(p.seconds_so_far() if hasattr(p, "seconds_so_far") else p.seconds)
        local = sum(seconds)  # this process's sources take turns
        seconds = [local] if self.sources else []
        for stats in [*self.service_stats, *self.workers.values()]:  # side by side: the longest
            if stats and stats.get("generated", stats.get("samples_generated", 0)):
                generated += int(stats.get("generated", stats.get("samples_generated", 0)))
                tokens += int(stats.get("tokens", 0))
                seconds.append(float(stats.get("seconds", 0.0)))
        if generated or self.display.meters[GENERATION].total is not None:
            self.display.set(GENERATION, self.ready + generated, tokens, max(seconds, default=0.0))

    def _worker_numbers(self) -> dict[str, Any]:
        generated = tokens = 0
        seconds = 0.0
        for s in self.sources:
            generated, tokens = generated + s.progress.samples_generated, tokens + s.progress.tokens
            seconds += s.progress.seconds
        assert self.planned is not None
        return {"worker": os.environ.get("PYTEST_XDIST_WORKER", "gw?"), **self.planned,
                "generated": generated, "tokens": tokens, "seconds": round(seconds, 3)}

    def _poll(self) -> None:
        """(xdist controller) Every so often: the services' counters, and a tick, so that the
        display moves while the workers wait for generation and report nothing."""
        last_poll = 0.0
        every = min(LIVE_REFRESH, POLL_SECONDS) if self.style.mode == "live" else POLL_SECONDS
        while not self._stop.wait(every):
            display = self.display
            if display is None or display.closed:
                return
            try:
                if time.monotonic() - last_poll >= POLL_SECONDS:
                    last_poll = time.monotonic()
                    self._poll_services()
                with display.lock:
                    if not display.closed:
                        self._refresh_generation()
                        display.tick()
            except Exception:  # pragma: no cover - a display must not end the run; the next poll tries again
                continue

    def _poll_services(self) -> None:
        if not self.services:
            return
        stats = [h.poll() for h in self.services]  # not under the lock: it waits on sockets
        assert self.display is not None
        with self.display.lock:
            self.service_stats = [s for s in stats if s is not None] or self.service_stats
            loads = sum(int(s.get("model_loads", 0)) for s in self.service_stats)
            if loads > self.loads_seen:
                self.loads_seen = loads
                s = next((s for s in self.service_stats if s.get("model_loads")), {})
                self.display.message(f"codeeval: generation service loaded the model in {s.get('load_seconds')} s "
                                     f"({s.get('dtype')} on {s.get('device')})")

    def close(self) -> None:
        """Stop the poller, read the services one last time, leave the final lines."""
        self._stop.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(POLL_SECONDS + 5)
        display = self.display
        if display is None or display.closed:
            return
        if display.started is not None:
            self._poll_services()
            with display.lock:
                self._refresh_generation()
        display.close()


def samples_of(source: Any, problem: Problem) -> int:
    """The samples a problem's item will judge: n for a model, else what the source holds."""
    options = getattr(source, "options", None)
    if isinstance(getattr(options, "n", None), int):
        return int(options.n)
    programs = source.available(problem)
    return len(programs) if programs else 0
