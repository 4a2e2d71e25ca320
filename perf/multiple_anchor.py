"""Run MultiPL-E's own evaluation runner (``evaluation/src/main.py``) on this machine's toolchains.

MultiPL-E's evaluators live in its repository (github.com/nuprl/MultiPL-E, ``evaluation/src``),
never in this one: this script imports them from a checkout named by ``--multiple-evaluation``
(or the environment variable ``MULTIPLE_EVALUATION``), the folder that holds ``src/main.py``.
To get one (about 2 GB of history; only ``evaluation/`` is needed):

    git clone --depth 1 --filter=blob:none --sparse https://github.com/nuprl/MultiPL-E /tmp/MultiPL-E
    git -C /tmp/MultiPL-E sparse-checkout set evaluation
    python perf/multiple_anchor.py --multiple-evaluation /tmp/MultiPL-E/evaluation --dir IN --output-dir OUT

Everything after this script's own options goes to MultiPL-E's ``main.main()`` unchanged
(``--dir``, ``--output-dir``, ``--max-workers``, ...): its runner reads every ``*.json``
completions file of ``--dir`` (one problem each: ``name``, ``language``, ``prompt``, ``tests``,
``completions``), evaluates the completions of one file at a time in a thread pool of
``--max-workers`` (each thread runs ``eval_<lang>.eval_script`` on ``prompt + completion + "\\n" +
tests`` written to a temporary file, in subprocesses), skips a program it has already evaluated
in this process (its cache), and writes ``<name>.results.json`` with one ``status`` (``OK``,
``SyntaxError``, ``Timeout``, ``Exception``, ...), ``exit_code``, ``stdout`` and ``stderr`` per
completion; here also ``seconds``, the wall time of its evaluation (for the perf scripts).

What this adapter changes, and nothing else:

- Toolchain locations of MultiPL-E's container that this machine has elsewhere: javatuples at
  ``/usr/multiple/javatuples-1.2.jar`` (here ``/usr/share/java``, or ``JAVATUPLES_JAR``);
  ``csc`` -> ``mcs`` (Mono's compiler, same options) and ``rdmd -unittest F`` -> ``ldmd2
  -unittest F`` then the program (LDC's dmd-like driver; rdmd builds and execs) where
  ``csc``/``rdmd`` are missing.
- With ``--timeout T``: the limit of every step that runs the program (MultiPL-E's own values
  differ by language: 15 s by default through ``safe_subprocess.run``, 5 s for Rust, JS, Ruby,
  R and C#, 30 s for Go's ``go test``, which builds and runs) becomes T seconds; compile steps
  (``javac``, ``g++``, ``rustc``, ``tsc``, ``scalac``, ``csc``/``mcs``) keep theirs.
- A step run through ``subprocess.run`` with a timeout (Go's ``go test``) runs in a process
  group of its own, killed whole on timeout: ``subprocess.run`` kills only ``go test`` and its
  test binary would loop on, taking a core from every later sample.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

COMPILERS = {"javac", "g++", "rustc", "tsc", "scalac", "csc", "mcs"}
JAVATUPLES = "/usr/multiple/javatuples-1.2.jar"  # where MultiPL-E's container puts it


def locate(explicit: str | None) -> Path:
    """The ``evaluation`` folder of a MultiPL-E checkout (holding ``src/main.py``), or exit saying how to get one."""
    given = explicit or os.environ.get("MULTIPLE_EVALUATION")
    if given:
        for candidate in (Path(given), Path(given) / "evaluation"):
            if (candidate / "src" / "main.py").is_file():
                return candidate.resolve()
    sys.exit("MultiPL-E's evaluators not found: pass --multiple-evaluation DIR (or set MULTIPLE_EVALUATION), "
             "DIR being the evaluation/ folder of a checkout of https://github.com/nuprl/MultiPL-E "
             "(see perf/multiple_anchor.py's docstring for a sparse clone)")


def _javatuples() -> str | None:
    for path in (os.environ.get("JAVATUPLES_JAR"), JAVATUPLES, "/usr/share/java/javatuples-1.2.jar",
                 "/usr/share/java/javatuples.jar"):
        if path and os.path.isfile(path):
            return path
    return None


def adapt_argv(args: list[Any]) -> list[Any]:
    """An evaluator's command line with this machine's toolchain in place of the container's."""
    args = list(args)
    jar = _javatuples()
    if jar and jar != JAVATUPLES:
        args = [a.replace(JAVATUPLES, jar) if isinstance(a, str) else a for a in args]
    head = str(args[0]) if args else ""
    if head == "csc" and not shutil.which("csc") and shutil.which("mcs"):
        args[0] = "mcs"
    if head == "rdmd" and not shutil.which("rdmd") and shutil.which("ldmd2"):
        # rdmd builds, then execs the program: its output and exit status are the program's own
        # (ldmd2 -run would add "Error: ... failed with status: 1", which eval_dlang reads as a
        # compile error)
        flags = " ".join(str(a) for a in args[1:-1])
        args = ["sh", "-c", f'ldmd2 {flags} -of="$1.bin" "$1" && exec "$1.bin"', "rdmd", str(args[-1])]
    return args


def adapt_env(env: dict[str, str] | None) -> dict[str, str] | None:
    jar = _javatuples()
    if env is None or not jar or jar == JAVATUPLES:
        return env
    return {k: v.replace(JAVATUPLES, jar) for k, v in env.items()}


def _runs_program(args: list[Any]) -> bool:
    return bool(args) and os.path.basename(str(args[0])) not in COMPILERS


def _run_group(args: list[Any], *, timeout: float, **kw: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with a timeout, in a process group of its own that is killed whole on timeout.

    ``subprocess.run`` kills only the process it started: for Go that is ``go test``, and the test
    binary it runs goes on looping after the timeout, taking a core from every later sample
    (seen: 15 such binaries still running at the end of a 300-sample mix). MultiPL-E's container
    has the same leak; killing the group removes a cost that is not MultiPL-E's evaluation.
    TimeoutExpired is raised as before, so the evaluator sees exactly what it saw.
    """
    check = kw.pop("check", False)
    feed = kw.pop("input", None)
    if kw.pop("capture_output", False):
        kw["stdout"] = kw["stderr"] = subprocess.PIPE
    if feed is not None:
        kw["stdin"] = subprocess.PIPE
    with subprocess.Popen(args, start_new_session=True, **kw) as proc:
        try:
            out, err = proc.communicate(feed, timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise
    done = subprocess.CompletedProcess(args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def patch(module: types.ModuleType, timeout: float | None) -> None:
    """Route one evaluator module's ``run`` (safe_subprocess) and ``subprocess.run`` through the adapter."""
    original_run = getattr(module, "run", None)
    if original_run is not None and getattr(original_run, "__module__", "") == "safe_subprocess":
        def run(args: list[Any], timeout_seconds: int = 15, *rest: Any, **kw: Any) -> Any:
            if "env" in kw:
                kw["env"] = adapt_env(kw["env"])
            if timeout is not None and _runs_program(args):
                timeout_seconds = timeout  # type: ignore[assignment]
            return original_run(adapt_argv(args), timeout_seconds, *rest, **kw)
        module.run = run  # type: ignore[attr-defined]
    if getattr(module, "subprocess", None) is subprocess:
        shim = types.ModuleType("subprocess")
        shim.__dict__.update(subprocess.__dict__)

        def sub_run(args: list[Any], *rest: Any, **kw: Any) -> Any:
            if "env" in kw:
                kw["env"] = adapt_env(kw["env"])
            if timeout is not None and "timeout" in kw and _runs_program(args):
                kw["timeout"] = timeout
            if "timeout" not in kw or rest:
                return subprocess.run(adapt_argv(args), *rest, **kw)
            return _run_group(adapt_argv(args), **kw)
        shim.run = sub_run  # type: ignore[attr-defined]
        module.subprocess = shim  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--multiple-evaluation", metavar="DIR",
                    help="MultiPL-E's evaluation/ folder (env MULTIPLE_EVALUATION)")
    ap.add_argument("--timeout", type=int, help="seconds for every step that runs a program (default: MultiPL-E's own)")
    ours, theirs = ap.parse_known_args()
    src = locate(ours.multiple_evaluation) / "src"
    sys.path.insert(0, str(src))
    import main as multiple_main  # MultiPL-E's evaluation/src/main.py (imports containerized_eval)

    # every evaluator, including those main.py imports by name on first use (eval_go, eval_ts, ...)
    for path in sorted(src.glob("eval_*.py")):
        try:
            module = importlib.import_module(path.stem)
        except ImportError:  # eval_matlab needs MATLAB's engine
            continue
        patch(module, ours.timeout)
    # each evaluated program's wall seconds, as "seconds" in its result (a program found in the
    # runner's cache is not evaluated again and shares the first one's result)
    evaluate = multiple_main.eval_string_script

    def timed(language: str, program: str) -> dict[str, Any]:
        started = time.perf_counter()
        result = evaluate(language, program)
        result["seconds"] = round(time.perf_counter() - started, 6)
        return result
    multiple_main.eval_string_script = timed
    sys.argv = [str(src / "main.py"), *theirs]
    multiple_main.main()


if __name__ == "__main__":
    main()
