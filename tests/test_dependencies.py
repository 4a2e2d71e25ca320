"""What each install needs: the core (replay, reference, endpoints, gates, reports) runs without
the hf extra's packages; a missing extra is a one-line usage error naming it; the plugin imports
nothing heavy and leaves the environment alone unless a local model is used.

Packages are made absent the way Python itself sees a missing module: ``sys.modules[name] =
None`` in a fresh interpreter (``import`` raises ModuleNotFoundError, ``find_spec`` finds
nothing), before pytest starts there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

HF = ("torch", "transformers", "accelerate", "safetensors", "peft", "gguf", "datasets", "bitsandbytes")
# what must not be imported by a session that generates nothing locally
HEAVY = ("torch", "transformers", "accelerate", "safetensors", "peft", "gguf", "datasets", "bitsandbytes",
         "tokenizers", "huggingface_hub", "numpy", "openai", "matplotlib")
IDS = ["HumanEval_0", "HumanEval_2", "HumanEval_7"]
HF_INSTALLED = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "accelerate", "safetensors"))

RUNNER = """
import json, os, sys
for name in json.loads(os.environ["CODEEVAL_TEST_ABSENT"]):
    sys.modules[name] = None
import pytest
code = pytest.main(sys.argv[1:])
heavy = json.loads(os.environ["CODEEVAL_TEST_HEAVY"])
loaded = sorted({m.split(".")[0] for m, mod in list(sys.modules.items()) if mod is not None} & set(heavy))
with open(os.environ["CODEEVAL_TEST_REPORT"], "w") as f:
    json.dump({"code": int(code), "loaded": loaded, "omp": os.environ.get("OMP_WAIT_POLICY")}, f)
sys.exit(int(code))
"""


def run(where: Path, *args: str, absent: tuple[str, ...] = (), autoload: bool = False,
        env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """pytest in a fresh interpreter in ``where``, with ``absent`` packages missing; returns the
    process and what the interpreter held at the end (heavy modules loaded, OMP_WAIT_POLICY)."""
    report = where / ".report.json"
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT")}
    environment.update(CODEEVAL_TEST_ABSENT=json.dumps(list(absent)), CODEEVAL_TEST_HEAVY=json.dumps(HEAVY),
                       CODEEVAL_TEST_REPORT=str(report), CODEEVAL_CACHE=str(where / ".cache"), HF_HUB_OFFLINE="1",
                       PYTHONPATH=str(REPO))
    plugins: list[str] = []
    if not autoload:  # only this plugin: other installed plugins import what they like
        environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        plugins = ["-p", "pytest_codeeval.plugin"]
    environment.update(env or {})
    done = subprocess.run([sys.executable, "-c", RUNNER, *plugins, "-p", "no:cacheprovider", *args],
                          cwd=where, env=environment, capture_output=True, text=True, timeout=300)
    return done, json.loads(report.read_text()) if report.is_file() else {}


@pytest.fixture
def humaneval_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "benchmarks" / "humaneval", tmp_path / "benchmarks" / "humaneval",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _select(ids: list[str]) -> list[str]:
    return [f"benchmarks/humaneval/test_humaneval.py::test_humaneval[{i}]" for i in ids]


# -- imports and the environment --------------------------------------------------------------
def test_importing_the_plugin_imports_nothing_heavy_and_sets_nothing() -> None:
    code = ("import json, os, sys\nimport pytest_codeeval.plugin\n"
            f"print(json.dumps([sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r})), "
            "os.environ.get('OMP_WAIT_POLICY')]))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [[], None]


@pytest.mark.parametrize("asked", [False, True], ids=["dormant", "with-an-option"])
def test_a_session_without_codeeval_items_imports_nothing_heavy(tmp_path: Path, asked: bool) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    done, held = run(tmp_path, *(["--codeeval-n=2"] if asked else []))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert held == {"code": 0, "loaded": [], "omp": None}


def test_the_core_runs_without_the_hf_extra(humaneval_dir: Path, humaneval_records: list[dict[str, Any]]) -> None:
    """Replay and the reference solutions with every hf package absent: judged, written, and
    nothing of a local model's imported or set."""
    rows = [{"task_id": r["task_id"], "completion": r["canonical_solution"]} for r in humaneval_records[:10]]
    (humaneval_dir / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for source in ("--codeeval-generations=s.jsonl", "--codeeval-model=reference"):
        done, held = run(humaneval_dir, *_select(IDS), source, "--codeeval-json=r.json", absent=HF)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
        assert json.loads((humaneval_dir / "r.json").read_text())["partial"]["humaneval"]["pass@1"] == 1.0
        assert not {"torch", "transformers", "datasets"} & set(held["loaded"]) and held["omp"] is None


def test_an_endpoint_runs_without_the_hf_extra(humaneval_dir: Path) -> None:
    from tests.test_endpoint import FakeServer, solver
    from pytest_codeeval.benchmarks import load

    server = FakeServer(solver({p.task_id: p for p in load("humaneval", None).problems}), models=("acme/coder-instruct",))
    try:
        done, held = run(humaneval_dir, *_select(IDS), f"--codeeval-model={server.url}", "--codeeval-json=r.json",
                         absent=HF)
    finally:
        server.close()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert len(server.posts("/v1/chat/completions")) == 3
    assert "openai" in held["loaded"] and not {"torch", "transformers"} & set(held["loaded"]) and held["omp"] is None


# -- a missing extra: one line naming it ------------------------------------------------------
HF_LINE = 'needs the hf extra: pip install "pytest-codeeval[hf]" (missing: torch, transformers, accelerate, safetensors)'


def test_a_local_model_without_the_hf_extra_is_one_line(humaneval_dir: Path) -> None:
    checkpoint = humaneval_dir / "ckpt"
    checkpoint.mkdir()
    for flag in ("--codeeval-model", "--codeeval-baseline-model"):
        other = ["--codeeval-model=reference"] if flag != "--codeeval-model" else []
        done, held = run(humaneval_dir, "benchmarks/humaneval", f"{flag}={checkpoint}", *other, absent=HF)
        assert done.returncode == pytest.ExitCode.USAGE_ERROR
        assert done.stderr.strip() == f"ERROR: {flag}={checkpoint} {HF_LINE}"
        assert "Traceback" not in done.stdout and held["omp"] is None


def test_the_embedded_default_without_the_hf_extra_is_one_line(humaneval_dir: Path) -> None:
    done, _ = run(humaneval_dir, *_select(IDS[:1]), absent=HF)
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    output = done.stdout + done.stderr
    assert ("ERROR: the embedded model (SmolLM2-135M-Instruct, the default without --codeeval-model or "
            f"--codeeval-generations) {HF_LINE}") in output
    assert "Traceback" not in output and "codeeval: loading" not in output


@pytest.mark.skipif(not HF_INSTALLED, reason="needs the hf extra installed (only bitsandbytes or peft is made absent)")
def test_quantization_and_adapters_name_their_extra(humaneval_dir: Path) -> None:
    checkpoint = humaneval_dir / "ckpt"
    checkpoint.mkdir()
    done, _ = run(humaneval_dir, "benchmarks/humaneval", f"--codeeval-model={checkpoint}", "--codeeval-load-in-4bit",
                  absent=("bitsandbytes",))
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert done.stderr.strip() == ('ERROR: --codeeval-load-in-4bit needs the quant extra: '
                                   'pip install "pytest-codeeval[quant]" (missing: bitsandbytes)')
    done, _ = run(humaneval_dir, "benchmarks/humaneval", f"--codeeval-model={checkpoint}", "--codeeval-peft=./adapter",
                  absent=("peft",))
    assert done.returncode == pytest.ExitCode.USAGE_ERROR
    assert done.stderr.strip() == ('ERROR: --codeeval-peft=./adapter needs the hf extra: '
                                   'pip install "pytest-codeeval[hf]" (missing: peft)')


def test_benchmark_data_without_datasets_says_what_to_install(tmp_path: Path) -> None:
    """The hub fallback is optional: without ``datasets`` the skip reason names it."""
    code = ("import sys\nsys.modules['datasets'] = None\nfrom pathlib import Path\n"
            "from pytest_codeeval import benchmarks\n"
            "try:\n    benchmarks.load('mbpp', Path(sys.argv[1]))\n"
            "except benchmarks.DataUnavailable as e:\n    print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == (f"MBPP data not found: put google-research's mbpp/mbpp.jsonl in {tmp_path}/mbpp "
                                   "(or, online, the hub's mbpp: pip install datasets, or \"pytest-codeeval[hf]\")")


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None, reason="datasets is not installed")
def test_benchmark_data_offline_is_not_retried_for_half_a_minute(tmp_path: Path) -> None:
    """With ``datasets`` installed and the hub switched off (or unreachable), the fallback is not
    tried: ``datasets`` itself would retry for about 23 s per benchmark before giving up."""
    code = ("import sys, time\nfrom pathlib import Path\nfrom pytest_codeeval import benchmarks\n"
            "started = time.monotonic()\n"
            "for name in ('mbpp', 'humanevalplus', 'humaneval-js'):\n"
            "    try:\n        benchmarks.load(name, Path(sys.argv[1]))\n"
            "    except benchmarks.DataUnavailable as e:\n        print(e)\n"
            "print(round(time.monotonic() - started))\n")
    for env in ({"HF_HUB_OFFLINE": "yes"}, {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}):
        environment = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                              env={**environment, **env}, timeout=120)
        *messages, seconds = done.stdout.strip().splitlines()
        assert len(messages) == 3 and all("(or go online for the hub's" in m for m in messages), done.stdout
        assert int(seconds) < 10, (env, done.stdout, done.stderr[-2000:])


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
