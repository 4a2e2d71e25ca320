"""Plain records shared by every module: problems, sample outcomes, per-problem results.

This module imports nothing from the rest of the package (nor pytest, nor torch) so that the
sandbox's fork server can use it in a bare interpreter.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


INSTRUCTION = (
    "Please provide a self-contained Python script that solves the following problem "
    "in a markdown code block:"
)
# MultiPL-E's languages, for the instruction: name in the text, markdown fence tag
LANGUAGE_NAMES = {"python": ("Python", "python"), "js": ("JavaScript", "javascript"), "cpp": ("C++", "cpp"),
                  "java": ("Java", "java"), "rs": ("Rust", "rust"), "go": ("Go", "go"), "sh": ("Bash", "bash")}


def _runner_names(language: str) -> tuple[str, str]:
    """(name, fence tag) of a language from its sandbox runner (docs/adding-a-language.md); the
    language code itself for one without a runner."""
    from pytest_codeeval.sandbox import languages  # standard library only, light

    runner = languages.RUNNERS.get(language)
    return (runner.display, runner.fence) if runner is not None else (language, language)


class Outcome(str, enum.Enum):
    """What happened to one sample. The string values are what results files record."""

    PASSED = "passed"  # the harness confirmed that every check returned
    FAILED = "failed"  # an exception escaped the program or its checks (assert, SystemExit, ...)
    SYNTAX_ERROR = "syntax_error"  # the program does not compile (Python) or parse (JavaScript, Bash)
    COMPILE_ERROR = "compile_error"  # the compiler rejected the program (C++, Java, Rust, Go)
    TIMEOUT = "timeout"  # killed at the time limit
    OOM = "oom"  # MemoryError, or killed at the memory limit
    EXITED = "exited"  # the process ended on its own before the checks confirmed
    CRASHED = "crashed"  # killed by a signal (segfault, self-kill, ...) or its supervisor died

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    A sample is always judged as a whole program: ``program_prefix + completion`` for models
    that continue the prompt (``program_prefix + middle + suffix`` for fill-in-the-middle
    problems), or a full solution as given. ``tests`` runs after the program, in the same
    namespace, and must raise when the program is wrong.
    """

    benchmark: str
    task_id: str
    prompt: str
    tests: str
    entry_point: str
    reference: str  # a full program that passes ``tests``
    program_prefix: str = ""  # what a completion is appended to (the prompt, for HumanEval)
    language: str = "python"
    stop: tuple[str, ...] = ()
    timeout: float = 3.0  # seconds per sample, the benchmark's default
    index: int = 0  # position in the benchmark's dataset order
    # Two-level problems (HumanEval+, MBPP+): ``base_tests`` run first and are confirmed on their
    # own, then ``tests`` (the plus level). Both read ``__codeeval_data__`` from ``data_path``.
    base_tests: str | None = None
    data_path: str | None = None
    # Fill-in-the-middle problems (HumanEval infilling): the code after the hole. None: the
    # model continues the prompt; "" is a hole at the end of the program, still infilling.
    suffix: str | None = None
    # Trusted code the tests may use, when ``program_prefix`` is not it (an infilling prefix
    # cut mid-statement cannot run alone): HumanEval's own prompt for the same task.
    prelude: str | None = None

    @property
    def instruction(self) -> str:
        """What an instruct (chat) model is asked in place of ``prompt``: evalplus's wording, so
        that chat models' numbers compare with its leaderboard."""
        name, fence = LANGUAGE_NAMES.get(self.language) or _runner_names(self.language)
        return f"{INSTRUCTION.replace('Python', name)}\n```{fence}\n{self.prompt.strip()}\n```\n"

    @property
    def judge_prelude(self) -> str:
        """Trusted code whose definitions the tests may use, run in the judge before them: the
        dataset's own prompt (HumanEval's ``poly``, ``encode_cyclic``), never the completion."""
        if self.prelude is not None:
            return self.prelude
        return self.program_prefix if self.language == "python" else ""

    @property
    def infilling(self) -> bool:
        """Whether the model fills a hole between ``program_prefix`` and ``suffix``."""
        return self.suffix is not None

    @property
    def item_id(self) -> str:
        """The pytest id: the task id without "/" so that ``-k HumanEval_0`` selects it."""
        return self.task_id.replace("/", "_")

    def program_from_completion(self, completion: str) -> str:
        """The runnable program for a completion that continues ``prompt`` (or, for an
        infilling problem, the middle between its prefix and ``suffix``)."""
        return self.program_prefix + completion + (self.suffix or "")

    def completion_of(self, program: str) -> str | None:
        """The completion (the middle, for infilling) that :meth:`program_from_completion`
        turns into ``program``; None when ``program`` is not of that shape."""
        prefix, suffix = self.program_prefix, self.suffix or ""
        if not prefix or not program.startswith(prefix) or not program.endswith(suffix):
            return None
        if len(program) < len(prefix) + len(suffix):
            return None
        return program[len(prefix): len(program) - len(suffix)]

    def check_stages(self) -> list[tuple[str, str]]:
        """The check programs in the order they run."""
        if self.base_tests is None:
            return [("tests", self.tests)]
        return [("base", self.base_tests), ("plus", self.tests)]


_KEEP = frozenset("\n\t")


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab escaped (``\\x1b``): what a
    sample wrote must not drive the user's terminal, nor rewrite a report's other lines."""
    if text.isprintable() or all(c.isprintable() or c in _KEEP for c in text):
        return text
    out = []
    for c in text:
        if c.isprintable() or c in _KEEP:
            out.append(c)
        else:
            code = ord(c)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


@dataclass(frozen=True)
class SampleResult:
    """The verdict on one sample, as the sandbox reports it."""

    outcome: Outcome
    detail: str = ""  # one line: the exception, the signal, the limit hit
    traceback: str = ""  # the tail of the traceback, when an exception escaped
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0  # wall-clock seconds (of the run step, for compiled languages)
    compile_duration: float | None = None  # wall-clock seconds of the compile step; None: none
    stages: tuple[str, ...] = ()  # check stages confirmed passed before the last (e.g. "base")

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED

    def passed_stage(self, stage: str) -> bool:
        """Whether the sample got through ``stage`` (passing everything implies every stage)."""
        return self.passed or stage in self.stages

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleResult:
        """From the sandbox's verdict; every text a sample could have written is made printable."""
        return cls(
            outcome=Outcome(data["outcome"]),
            detail=printable(str(data.get("detail", ""))),
            traceback=printable(str(data.get("traceback", ""))),
            stdout=printable(str(data.get("stdout", ""))),
            stderr=printable(str(data.get("stderr", ""))),
            duration=float(data.get("duration", 0.0)),
            compile_duration=None if data.get("compile_duration") is None else float(data["compile_duration"]),
            stages=tuple(str(s) for s in data.get("stages", ())),
        )


@dataclass(frozen=True)
class ProblemResult:
    """All samples of one problem, judged."""

    problem: Problem
    programs: tuple[str, ...]
    results: tuple[SampleResult, ...] = field(default_factory=tuple)

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def c(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def c_base(self) -> int | None:
        """Samples that passed the base level, for two-level problems."""
        if self.problem.base_tests is None:
            return None
        return sum(1 for r in self.results if r.passed_stage("base"))

    @property
    def first_failure(self) -> int | None:
        """Index of the first sample that did not pass, if any."""
        for i, r in enumerate(self.results):
            if not r.passed:
                return i
        return None

    def to_property(self) -> dict[str, Any]:
        """The JSON-able record that travels in ``report.user_properties`` (also under xdist)."""
        return {
            "benchmark": self.problem.benchmark,
            "task_id": self.problem.task_id,
            "index": self.problem.index,
            "n": self.n,
            "c": self.c,
            "outcomes": [r.outcome.value for r in self.results],
            **({"c_base": self.c_base} if self.c_base is not None else {}),
            **(self.timings() if self.problem.language != "python" else {}),
        }

    def timings(self) -> dict[str, list[float | None]]:
        """Per sample, the compile step's and the run's wall-clock seconds (languages other than
        Python, whose compile step is apart; None where a sample was not compiled)."""
        return {"compile_seconds": [r.compile_duration for r in self.results],
                "run_seconds": [round(r.duration, 6) for r in self.results]}
