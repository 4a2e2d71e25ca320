"""``perf/gpu_check.py`` in its reduced CPU mode, as a user runs it: a subprocess, its table read
back. Greedy decoding of the same fp32 weights must give the same text through every path that
ran (the project's loop batched and one row at a time, transformers' ``generate``, the endpoint
path against ``transformers serve``): a broken path disagrees. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "perf" / "gpu_check.py"
CUDA_ROWS = ["local-fp16", "local-bf16", "local-8bit", "local-4bit", "vllm", "endpoint-vllm-serve"]
HEADER = ["row", "dtype", "tokens", "seconds", "tokens/s", "peak GPU MiB (device / torch)", "same as local-fp32", "note"]


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=900)


def _table(stdout: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    header, rule, body = rows[0], rows[1], rows[2:]
    assert all(c == "---" for c in rule) and all(len(r) == len(header) for r in body), stdout
    return [r[0] for r in body], {r[0]: dict(zip(header, r)) for r in body}


def _json(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    doc["by_name"] = {r["name"]: r for r in doc["rows"]}
    return doc


def test_cpu_mode_table_has_every_row_and_the_paths_that_ran_agree(tmp_path: Path) -> None:
    done = _run(tmp_path, "--cpu", "--json", "r.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "8 HumanEval prompts, base prompts, greedy, at most 32 new tokens" in done.stdout
    names, table = _table(done.stdout)
    assert list(table["local-fp32"]) == HEADER
    assert names == ["local-fp32", "local-fp32-1row", "hf-generate", "endpoint-transformers-serve", *CUDA_ROWS]
    ran = ["local-fp32", "local-fp32-1row", "hf-generate"]
    assert [table[n]["same as local-fp32"] for n in ran] == ["ref", "8/8", "8/8"]
    for n in ran:
        assert int(table[n]["tokens"]) > 0 and float(table[n]["tokens/s"]) > 0 and table[n]["note"] == ""
        assert table[n]["peak GPU MiB (device / torch)"] == "-"
    for n in CUDA_ROWS:
        assert table[n]["note"] == "skipped: no CUDA (CPU mode)" and table[n]["tokens/s"] == "-"
    assert table["endpoint-transformers-serve"]["note"].startswith("skipped: ")

    doc = _json(tmp_path / "r.json")
    assert doc["cuda"] is False and doc["references"] == ["local-fp32"]
    texts = [doc["by_name"][n]["texts"] for n in ran]
    assert len(texts[0]) == 8 and texts[1] == texts[0] and texts[2] == texts[0]
    # real completions, not a constant: each prompt continued its own way
    assert all(texts[0]) and len(set(texts[0])) > 4
    # the same tokens counted the same way (EOS and the token completing a stop included)
    assert len({doc["by_name"][n]["tokens"] for n in ran}) == 1


def test_cpu_mode_endpoint_path_against_transformers_serve_agrees_in_chat_mode(tmp_path: Path) -> None:
    absent = [m for m in ("fastapi", "uvicorn", "openai") if importlib.util.find_spec(m) is None]
    if absent:
        pytest.skip(f"transformers serve needs {', '.join(absent)}")
    done = _run(tmp_path, "--cpu", "--serve", "--chat", "on", "--prompts", "2", "--max-new-tokens", "12",
                "--rows", "local-fp32,endpoint-transformers-serve", "--json", "r.json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 HumanEval prompts, chat prompts" in done.stdout
    names, table = _table(done.stdout)
    assert names == ["local-fp32", "endpoint-transformers-serve"]
    assert table["endpoint-transformers-serve"]["same as local-fp32"] == "2/2", done.stdout
    doc = _json(tmp_path / "r.json")
    local, served = doc["by_name"]["local-fp32"], doc["by_name"]["endpoint-transformers-serve"]
    assert served["texts"] == local["texts"] and all(local["texts"])


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "/nonexistent/ckpt"], "gpu_check: --model /nonexistent/ckpt: not a checkpoint folder"),
    (["--rows", "local-fp32,warp-drive"], "gpu_check: --rows: unknown row(s) warp-drive; known here: local-fp32, "),
    (["--chat", "on", "--model", "."], "gpu_check: --model .: no config.json in that folder"),
    (["--tiny", "--model", "."], "gpu_check: --tiny and --model exclude each other"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = _run(tmp_path, "--cpu", *args)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr
