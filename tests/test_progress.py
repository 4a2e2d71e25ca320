"""The progress display: its text, its throttling, its silence, how it draws on a terminal
(rendered by a small VT100 screen), and end to end: a replay run and a tiny-model run, serial
and under -n 2, in a log and in a pseudo-terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _pytest._io import TerminalWriter

from pytest_codeeval import progress
from pytest_codeeval.progress import EXECUTION, GENERATION, Display, Style, TerminalScreen, draw_sequence
from tests.conftest import write_jsonl
from tests.vt import Terminal


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Lines:
    """A Screen that records what it is asked to draw."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.lines: list[tuple[str, bool]] = []
        self.shown: list[list[str]] = []
        self.hidden = False

    def width(self) -> int:
        return 100

    def show(self, rows: list[str]) -> None:
        self.shown.append(rows)

    def hide(self) -> None:
        self.hidden = True

    def line(self, text: str, final: bool = False) -> None:
        self.lines.append((text, final))


def _display(style: Style) -> tuple[Display, Lines, Clock]:
    screen, clock = Lines(), Clock()
    return Display(screen, style, clock), screen, clock


# -- the meters' text ---------------------------------------------------------------------------
def test_percentage_eta_rates_and_cached_samples_in_the_text() -> None:
    display, screen, clock = _display(Style("lines"))
    display.start()
    display.plan(GENERATION, 200, initial=40)  # 40 cached before the run
    clock.now = 30.0  # a model's loading: not in the seconds spent generating
    display.set(GENERATION, 50, tokens=400, seconds=2.0)
    clock.now = 40.0
    display.set(GENERATION, 90, tokens=1000, seconds=5.0)
    m = display.meters[GENERATION]
    # 50 generated in the 5 s spent generating: 10/s, 110 to go: 11 s; elapsed since the start
    assert m.text(clock.now) == "generation 90/200 (45%) [00:40<00:11, 10.00 samples/s, 200.0 tokens/s, 40 cached]"
    assert m.compact(clock.now) == "generation 90/200 45% ETA 00:11"
    row = m.row(clock.now, 100)
    assert row.startswith("codeeval generation:  45%|") and row.endswith("| 90/200 [00:40<00:11, 10.00 samples/s, 200.0 tokens/s]")
    assert len(row) <= 100
    clock.now = 60.0
    display.set(GENERATION, 200, tokens=4000, seconds=16.0)
    clock.now = 90.0  # finished at 60 s: the final numbers stop there
    assert m.text(clock.now) == "generation 200/200 (100%) [01:00<00:00, 10.00 samples/s, 250.0 tokens/s, 40 cached]"
    assert m.compact(clock.now) == "generation 200/200 100% in 01:00"


def test_rates_before_and_after_the_first_progress_and_without_a_total() -> None:
    display, _, clock = _display(Style("lines"))
    display.start()
    display.plan(EXECUTION, 10)
    clock.now = 5.0
    display.set(EXECUTION, 2)  # the first progress: the run's average so far
    assert display.meters[EXECUTION].text(clock.now) == "execution 2/10 (20%) [00:05<00:20,  0.40 samples/s]"
    clock.now = 6.0
    display.set(EXECUTION, 4)  # from now on: since the first progress
    assert display.meters[EXECUTION].text(clock.now) == "execution 4/10 (40%) [00:06<00:03,  2.00 samples/s]"
    display.set(GENERATION, 7)  # no plan yet (an xdist controller before the first report)
    assert display.meters[GENERATION].text(clock.now) == "generation 7 samples [00:06,  1.17 samples/s]"
    clock.now = 0.0
    fresh, _, _ = _display(Style("lines"))
    fresh.plan(EXECUTION, 10)
    assert fresh.meters[EXECUTION].text(0.0) == "execution 0/10 (0%) [00:00<?, ? samples/s]"  # no guess


# -- when lines are written ------------------------------------------------------------------------
def test_plain_lines_come_at_once_then_every_interval_never_with_a_carriage_return() -> None:
    display, screen, clock = _display(Style("lines", interval=10.0))
    display.start()
    display.tick()
    assert screen.lines == []  # nothing planned, nothing to show
    display.plan(EXECUTION, 100)
    for t in range(0, 35):
        clock.now = float(t)
        display.add(EXECUTION, 2)
        display.tick()
    times = [re.search(r"\[(\d\d:\d\d)<", text).group(1) for text, _ in screen.lines]  # type: ignore[union-attr]
    assert times == ["00:00", "00:10", "00:20", "00:30"]
    assert screen.shown == [] and all("\r" not in text and "\n" not in text for text, _ in screen.lines)
    clock.now = 35.0
    display.add(EXECUTION, 30)
    display.close()
    assert screen.lines[-1] == ("codeeval: execution 100/100 (100%) [00:35<00:00,  2.80 samples/s]", True)
    display.tick(force=True)
    assert len(screen.lines) == 5  # closed: nothing more


def test_both_meters_share_a_line_and_each_gets_a_final_one() -> None:
    display, screen, clock = _display(Style("lines"))
    display.plan(GENERATION, 4)
    display.plan(EXECUTION, 4)
    clock.now = 1.0
    display.set(GENERATION, 4, tokens=40, seconds=1.0)
    display.tick()
    assert screen.lines[0][0].startswith("codeeval: generation 4/4 (100%) [00:01<00:00, ")
    assert " | execution 0/4 (0%) [00:01<?, ? samples/s]" in screen.lines[0][0]
    display.add(EXECUTION, 4)
    display.close()
    assert [final for _, final in screen.lines[1:]] == [True, True]
    assert screen.lines[1][0].startswith("codeeval: generation 4/4 (100%)")
    assert screen.lines[2][0].startswith("codeeval: execution 4/4 (100%)")


def test_a_generation_served_from_the_cache_shows_no_meter_only_a_final_note() -> None:
    display, screen, _ = _display(Style("lines"))
    display.plan(GENERATION, 15, initial=15)
    display.plan(EXECUTION, 15)
    display.add(EXECUTION, 15)
    display.tick()
    assert "generation" not in screen.lines[0][0]
    display.close()
    assert ("codeeval: generation: all 15 samples from the cache", True) in screen.lines


def test_compact_form_under_q_is_one_line_without_messages() -> None:
    display, screen, clock = _display(Style("lines", compact=True, messages=False))
    display.plan(GENERATION, 10)
    display.plan(EXECUTION, 10)
    display.message("codeeval: loading tiny ...")
    clock.now = 2.0
    display.set(GENERATION, 5)
    clock.now = 4.0
    display.set(GENERATION, 10)
    display.tick()
    assert screen.lines == [("codeeval: generation 10/10 100% in 00:04 | execution 0/10 0% ETA ?", False)]
    display.add(EXECUTION, 10)
    display.close()
    assert screen.lines[-1] == ("codeeval: generation 10/10 100% in 00:04 | execution 10/10 100% in 00:04", True)


def test_off_draws_nothing_at_all() -> None:
    display, screen, _ = _display(Style("off", messages=False))
    display.plan(EXECUTION, 10)
    display.message("codeeval: loading tiny ...")
    display.add(EXECUTION, 10)
    display.tick(force=True)
    display.close()
    assert screen.lines == [] and screen.shown == [] and not screen.hidden


def _config(verbose: int = 0, tty: bool = False, capture: str = "fd", dist: str = "no",
            tw: TerminalWriter | None = None) -> Any:
    reporter = SimpleNamespace(isatty=tty, currentfspath=None, ensure_newline=lambda: None)
    plugins = {"terminalreporter": reporter, "capturemanager": None}
    return SimpleNamespace(option=SimpleNamespace(verbose=verbose, capture=capture, dist=dist),
                           pluginmanager=SimpleNamespace(get_plugin=plugins.get),
                           get_terminal_writer=lambda: tw)


@pytest.mark.parametrize("verbose, tty, capture, choice, expected", [
    (0, True, "fd", "auto", Style("live", interval=7.0)),
    (0, False, "fd", "auto", Style("lines", interval=7.0)),
    (0, True, "fd", "lines", Style("lines", interval=7.0)),
    (0, True, "no", "auto", Style("lines", interval=7.0)),  # -s: a test's prints would land in the rows
    (-1, True, "fd", "auto", Style("live", compact=True, interval=7.0, messages=False)),
    (-2, True, "fd", "auto", Style("off", messages=False)),  # -qq: nothing
    (0, True, "fd", "off", Style("off", messages=True)),  # no display; "loading ..." still said
])
def test_style_follows_the_option_the_verbosity_and_the_terminal(monkeypatch: pytest.MonkeyPatch, verbose: int, tty: bool,
                                                                 capture: str, choice: str, expected: Style) -> None:
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(encoding="utf-8"))
    assert progress.style_for(_config(verbose, tty, capture), choice, 7.0) == expected


# -- drawing on a terminal -------------------------------------------------------------------------
def test_live_rows_sit_below_pytest_output_and_never_overwrite_it() -> None:
    out = io.StringIO()
    tw = TerminalWriter(out)
    tw.fullwidth = 60
    screen = TerminalScreen(_config(tw=tw), live=True)
    screen.attach()
    vt = Terminal(60, 8)
    tw.write("bench/test_x.py ")
    screen.show(["codeeval execution:  10%", "codeeval generation:  50%"])
    for i in range(3):
        tw.write(".")
    with screen.hold():  # a report hook: pytest writes its piece whole
        tw.write("F")
        tw.write(".")
    assert Terminal(60, 8).feed(out.getvalue()).lines() == [
        "bench/test_x.py ...F.", "codeeval execution:  10%", "codeeval generation:  50%"]
    screen.show(["codeeval execution:  60%"])  # one row fewer: the old second row is cleared
    tw.line("   [ 50%]")
    for i in range(12):  # past the screen's bottom: it scrolls, the rows stay below
        tw.line(f"line {i}")
    tw.write("...")
    screen.line("codeeval: loading model ...")  # a message: above the rows, on a line of its own
    tw.write("..")
    lines = vt.feed(out.getvalue()).lines()
    assert lines == ["bench/test_x.py ...F.   [ 50%]", *[f"line {i}" for i in range(12)], "...",
                     "codeeval: loading model ...", "..", "codeeval execution:  60%"]
    screen.hide()
    tw.line("")
    tw.line("== summary ==")
    final = Terminal(60, 8).feed(out.getvalue()).lines()
    assert final[-2:] == ["..", "== summary =="]  # the rows are gone
    assert "write" not in vars(tw)  # the writer is pytest's own again


def test_a_line_that_fills_the_width_exactly_is_not_drawn_under() -> None:
    assert draw_sequence(["row"], 60, 60) is None  # the terminal's pending wrap: column unknown
    assert draw_sequence(["row"], 65, 60) == "\n\x1b[1A\r\x1b[5C\x1b7\x1b[1B\rrow\x1b[K\x1b8"


# -- end to end ----------------------------------------------------------------------------------
PROGRESS = re.compile(r"^codeeval: (generation|execution)")
SIX = [f"benchmarks/humaneval/test_humaneval.py::test_humaneval[HumanEval_{i}]" for i in range(6)]


def _progress_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if PROGRESS.match(line)]


@pytest.fixture
def replay(bench_dir: Path, pytester: pytest.Pytester, humaneval_records: list[dict[str, Any]]) -> Path:
    """Three samples for each of the first six problems: two right, one wrong."""
    rows = [{"task_id": r["task_id"], "completion": c}
            for r in humaneval_records[:6] for c in (r["canonical_solution"], r["canonical_solution"], "    return None\n")]
    return write_jsonl(pytester.path / "samples.jsonl", rows)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_replay_run_logs_execution_progress_to_100_percent(pytester: pytest.Pytester, replay: Path,
                                                             xdist: list[str]) -> None:
    result = pytester.runpytest_subprocess(*SIX, f"--codeeval-generations={replay}", "-p", "no:cacheprovider", *xdist)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    lines = _progress_lines(result.stdout.str())
    assert lines and all(re.match(r"codeeval: execution \d+/18 \(\d+%\) \[", line) for line in lines), lines
    assert lines[-1].startswith("codeeval: execution 18/18 (100%) [")  # the final line, before the summary
    assert "\r" not in result.stdout.str()  # a log: never a carriage return
    assert "generation" not in result.stdout.str()  # nothing to generate

    quiet = pytester.runpytest_subprocess(*SIX, f"--codeeval-generations={replay}", "-p", "no:cacheprovider", "-q", *xdist)
    assert _progress_lines(quiet.stdout.str())[-1].startswith("codeeval: execution 18/18 100% in ")
    silent = pytester.runpytest_subprocess(*SIX, f"--codeeval-generations={replay}", "-p", "no:cacheprovider", "-qq", *xdist)
    assert silent.ret == pytest.ExitCode.OK and "codeeval: " not in silent.stdout.str()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, humaneval_records: list[dict[str, Any]]) -> Path:
    pytest.importorskip("transformers")
    from tests import tiny_models

    texts = [r["prompt"] + r["canonical_solution"] for r in humaneval_records]
    return tiny_models.build(tmp_path_factory.mktemp("models") / "tiny-base", texts)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_model_run_logs_generation_and_execution_progress(pytester: pytest.Pytester, bench_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, tiny_model: Path,
                                                            xdist: list[str]) -> None:
    monkeypatch.setenv("CODEEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    args = [*SIX, f"--codeeval-model={tiny_model}", "--codeeval-n=3", "--codeeval-temperature=0.8",
            "--codeeval-max-new-tokens=12", "--codeeval-progress-interval=0.5", "-p", "no:cacheprovider", *xdist]
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-3000:]  # noise solves nothing
    lines = _progress_lines(result.stdout.str())
    # the generation total: 6 problems x 3 samples; tokens/s from the source's (or service's) counters
    assert any(re.match(r"codeeval: generation \d+/18 \(\d+%\) \[.*\] \| execution \d+/18 \(", x) for x in lines), lines
    assert lines[-2].startswith("codeeval: generation 18/18 (100%) [") and "tokens/s" in lines[-2]
    assert lines[-1].startswith("codeeval: execution 18/18 (100%) [")
    assert "\r" not in result.stdout.str()
    if xdist:
        result.stdout.fnmatch_lines(["codeeval: generation service loaded the model in * s (* on cpu)"])

    again = pytester.runpytest_subprocess(*args, "-qq")  # from the cache, and silent
    assert again.ret == pytest.ExitCode.TESTS_FAILED and "codeeval: " not in again.stdout.str()


def run_in_a_terminal(args: list[str], cwd: Path, columns: int = 100, rows: int = 30) -> str:
    """pytest's output as a terminal receives it (a pseudo-terminal of the given size)."""
    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm", "COLUMNS": str(columns), "LINES": str(rows)}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=cwd, stdin=follower, stdout=follower,
                            stderr=follower, env=env, close_fds=True)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(300)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_in_a_terminal_the_rows_are_live_and_pytest_output_is_intact(pytester: pytest.Pytester, replay: Path) -> None:
    args = [*SIX, f"--codeeval-generations={replay}", "-p", "no:cacheprovider", "--color=no"]
    raw = run_in_a_terminal(args, pytester.path)
    assert "\x1b7\x1b[1B\rcodeeval execution: " in raw  # rows were drawn, below pytest's line
    screen = Terminal(100, 30).feed(raw).lines()
    dots = next(i for i, line in enumerate(screen) if line.startswith("benchmarks/humaneval/test_humaneval.py "))
    assert re.fullmatch(r"benchmarks/humaneval/test_humaneval.py \.{6} +\[100%\]", screen[dots]), screen
    assert screen[dots + 1].startswith("codeeval: execution 18/18 (100%) [")
    assert not any("codeeval execution:" in line for line in screen)  # the live rows are gone
    plain = subprocess.run([sys.executable, "-m", "pytest", *args, "--codeeval-progress=off"], cwd=pytester.path,
                           capture_output=True, text=True)
    summary = plain.stdout[plain.stdout.index("= codeeval ="):].splitlines()[1]
    assert summary in screen  # the summary as without the display
