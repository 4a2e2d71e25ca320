"""ReCode's reference self-check: which reference programs cannot pass, and why.

``tests/data/recode_known_failures.json`` lists, per benchmark, every item whose reference
program (the record's prompt + canonical solution; renamed under a function rename) fails in a
full ``--codeeval-model=reference`` run, with the outcome the plugin gave and the cause: the
release's own defects (shared/data/README.md, recode/ "Quirks" and "Verification").
test_recode.py checks a run against it, so a change of verdict on any item is noticed.

Regenerate it from the results files of full runs (the causes are worked out here: syntax errors
by compiling the reference, nothing executed; runtime failures by running the reference and the
release's test in a subprocess, as the data README's verification did)::

    pytest benchmarks/recode-humaneval --codeeval-model=reference --codeeval-json=he.json --tb=no -q -n 2
    pytest benchmarks/recode-mbpp --codeeval-model=reference --codeeval-json=mbpp.json --tb=no -q -n 2
    python tests/recode_known.py he.json mbpp.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

KNOWN = Path(__file__).parent / "data" / "recode_known_failures.json"


def known() -> dict[str, dict[str, dict[str, str]]]:
    """benchmark -> task id -> {"outcome", "cause"}."""
    data: dict[str, dict[str, dict[str, str]]] = json.loads(KNOWN.read_text(encoding="utf-8"))
    return data


def _compile_error(program: str) -> str:
    try:
        compile(program, "<reference>", "exec", dont_inherit=True)
    except SyntaxError as e:
        return f"{type(e).__name__}: {e.msg}"
    return ""


def _run_error(program: str, timeout: float) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(program)
    try:
        done = subprocess.run([sys.executable, f.name], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"no end within {timeout:.0f} s"
    finally:
        os.unlink(f.name)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return lines[-1].strip() if lines else f"exit status {done.returncode}"


def cause(problem: Any, outcome: str) -> str:
    """Why the reference of ``problem`` fails, in words: the release defect and the error."""
    kind, _, rest = problem.task_id.partition("/")
    transformation = rest.split("/", 1)[0]
    program = problem.reference + "\n" + problem.tests
    if outcome == "syntax_error":
        error = _compile_error(program)
        if kind == "nlaugmenter" and "triple-quoted" in error:
            return f"the perturbation broke the docstring's closing quotes ({error})"
        if transformation == "tab_indent":
            return f"prompt indented with tabs, canonical solution with spaces ({error})"
        if kind == "natgen":
            return f"natgen's rewritten canonical solution does not compile ({error})"
        if transformation == "split_lines":
            return f"split_lines broke a line the solution needs whole ({error})"
        if kind == "func_name":
            return f"the rename replaced text beyond the function's name ({error})"
        return f"the release's prompt and solution do not compile ({error})"
    if outcome == "timeout":
        return f"the canonical solution does not terminate ({_run_error(program, 20)})"
    error = _run_error(program, 60)
    if problem.entry_point == "check":
        return f"the entry point is named check, replaced by the test's own check() ({error})"
    if "NameError" in error and kind == "func_name":
        return f"the release's test or solution calls the function by its old name ({error})"
    return f"the canonical solution fails the release's own test ({error})"


def build(results: list[Path], data_dir: Path) -> dict[str, dict[str, dict[str, str]]]:
    from pytest_codeeval import benchmarks

    out: dict[str, dict[str, dict[str, str]]] = {}
    for path in results:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for name, records in doc["problems"].items():
            if not name.startswith("recode-"):
                continue
            bench = benchmarks.load(name, data_dir)
            failing = {t: r["outcomes"][0] for t, r in records.items() if r["c"] == 0}
            out[name] = {t: {"outcome": o, "cause": cause(bench.by_task_id[t], o)}
                         for t, o in sorted(failing.items(), key=lambda kv: bench.by_task_id[kv[0]].index)}
    return out


def dump(table: dict[str, dict[str, dict[str, str]]]) -> str:
    """The file's text: one line per entry, so that a changed verdict is a one-line diff."""
    blocks = []
    for bench, entries in table.items():
        lines = [f"  {json.dumps(t)}: {json.dumps(e, ensure_ascii=False)}" for t, e in entries.items()]
        blocks.append(f"{json.dumps(bench)}: {{\n" + ",\n".join(lines) + "\n }")
    return "{\n" + ",\n".join(blocks) + "\n}\n"


if __name__ == "__main__":
    data = Path(os.environ.get("CODEEVAL_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
    table = build([Path(a) for a in sys.argv[1:]], data)
    previous = known() if KNOWN.is_file() else {}
    KNOWN.write_text(dump({**previous, **table}), encoding="utf-8")
    for name, entries in table.items():
        print(f"{name}: {len(entries)} known failures")
