"""The generation planner's backends: the vLLM backend's requests against a fake ``vllm`` module
with the real API's signatures (``LLM``, ``SamplingParams``, ``RequestOutput``,
``CompletionOutput``), the sampling settings mapped from ``Sampling``'s fields alone, and the
generation package's modules importing alone, without cycles."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval.generation.backends import Job
from pytest_codeeval.generation.decoding import Sampling, knob
from pytest_codeeval.generation.model import ModelSpec
from pytest_codeeval.generation.planner import GenerationOptions
from tests.conftest import REPO

GENERATION = REPO / "pytest_codeeval" / "generation"

# -- a fake vllm: the real classes' signatures (vllm/sampling_params.py, vllm/outputs.py,
# vllm/entrypoints/llm.py), so a misspelt keyword fails here as it would there -------------------
FAKE_VLLM = '''
import json, os

CALLS = []  # ("LLM", kwargs) and ("generate", prompts, params, use_tqdm)


class SamplingParams:
    def __init__(self, n=1, best_of=None, presence_penalty=0.0, frequency_penalty=0.0,
                 repetition_penalty=1.0, temperature=1.0, top_p=1.0, top_k=0, min_p=0.0, seed=None,
                 stop=None, stop_token_ids=None, bad_words=None, ignore_eos=False, max_tokens=16,
                 min_tokens=0, logprobs=None, prompt_logprobs=None, detokenize=True,
                 skip_special_tokens=True, spaces_between_special_tokens=True,
                 include_stop_str_in_output=False):
        self.n, self.temperature, self.top_p, self.top_k, self.min_p = n, temperature, top_p, top_k, min_p
        self.seed, self.stop, self.max_tokens = seed, stop, max_tokens


class CompletionOutput:
    def __init__(self, index, text, token_ids, cumulative_logprob, logprobs, finish_reason=None,
                 stop_reason=None, lora_request=None):
        self.index, self.text, self.token_ids = index, text, token_ids
        self.cumulative_logprob, self.logprobs = cumulative_logprob, logprobs
        self.finish_reason, self.stop_reason = finish_reason, stop_reason


class RequestOutput:
    def __init__(self, request_id, prompt, prompt_token_ids, prompt_logprobs, outputs, finished,
                 metrics=None, lora_request=None, encoder_prompt=None, encoder_prompt_token_ids=None,
                 num_cached_tokens=None):
        self.request_id, self.prompt, self.prompt_token_ids = request_id, prompt, prompt_token_ids
        self.outputs, self.finished = outputs, finished


def answer(prompt_ids, params):
    """(text, token count, finish_reason, stop_reason): a reply that names its seed, then the
    first stop sequence when there is one (vLLM leaves the stop out of the text)."""
    text = f"    return {params.seed}\\n"
    if params.stop:
        return text, 5, "stop", params.stop[0]
    return text + "x" * 40, params.max_tokens, "length", None


class LLM:
    def __init__(self, model, *, runner="auto", tokenizer=None, tokenizer_mode="auto",
                 skip_tokenizer_init=False, trust_remote_code=False, allowed_local_media_path="",
                 tensor_parallel_size=1, dtype="auto", quantization=None, revision=None,
                 tokenizer_revision=None, seed=None, gpu_memory_utilization=0.9, swap_space=4,
                 cpu_offload_gb=0, enforce_eager=False, enable_prefix_caching=None,
                 disable_custom_all_reduce=False, hf_token=None, hf_overrides=None,
                 mm_processor_kwargs=None, compilation_config=None):
        CALLS.append(("LLM", dict(model=model, trust_remote_code=trust_remote_code, dtype=dtype,
                                  revision=revision, seed=seed, enable_prefix_caching=enable_prefix_caching)))
        log = os.environ.get("FAKE_VLLM_LOG")
        if log:
            with open(log, "a") as f:
                f.write(json.dumps({"engine": model}) + "\\n")

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True, lora_request=None,
                 priority=None):
        CALLS.append(("generate", prompts, sampling_params, use_tqdm))
        params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
        assert len(params) == len(prompts)
        log = os.environ.get("FAKE_VLLM_LOG")
        outputs = []
        for i, (prompt, p) in enumerate(zip(prompts, params)):
            ids = prompt["prompt_token_ids"]
            text, tokens, finish, stop = answer(ids, p)
            if log:
                with open(log, "a") as f:
                    f.write(json.dumps({"ids": ids, "seed": p.seed, "n": p.n, "stop": p.stop,
                                        "temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k,
                                        "max_tokens": p.max_tokens}) + "\\n")
            out = CompletionOutput(0, text, list(range(tokens)), None, None, finish, stop)
            outputs.append(RequestOutput(str(i), None, ids, None, [out], True))
        return outputs
'''


def _fake_vllm() -> types.ModuleType:
    module = types.ModuleType("vllm")
    exec(compile(FAKE_VLLM, "<fake vllm>", "exec"), module.__dict__)
    return module


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = _fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _backend(sampling: Sampling, seed: int = 3, **spec: Any) -> Any:
    from pytest_codeeval.generation.backends.vllm import VllmBackend

    lines: list[str] = []
    backend = VllmBackend(lambda: ModelSpec(model="/models/m", **spec), "m", GenerationOptions(sampling=sampling, seed=seed),
                          lines.append)
    return backend, lines


def _run(backend: Any, jobs: list[Job]) -> dict[tuple[str, int], Any]:
    done: dict[tuple[str, int], Any] = {}
    ticks: list[None] = []
    backend.generate(jobs, jobs, lambda job, entry: done.__setitem__(job.key, entry), lambda: ticks.append(None))
    assert len(ticks) == len(jobs)  # the display is told after each sample
    return done


def test_vllm_requests_carry_each_samples_seed_stops_and_the_sampling_settings(fake_vllm: Any) -> None:
    backend, lines = _backend(Sampling(temperature=0.8, top_p=0.9, top_k=5, max_new_tokens=32), precision="bf16")
    jobs = [Job(("a" * 32, 0), "def f():\n", (1, 2, 3), ("\ndef", "\nclass"), 11),
            Job(("a" * 32, 1), "def f():\n", (1, 2, 3), ("\ndef", "\nclass"), 12),
            Job(("b" * 32, 0), "def g():\n", (4, 5), (), 13)]
    done = _run(backend, jobs)

    (engine,) = [c[1] for c in fake_vllm.CALLS if c[0] == "LLM"]
    assert engine == {"model": "/models/m", "trust_remote_code": False, "dtype": "bfloat16", "revision": None,
                      "seed": 3, "enable_prefix_caching": True}
    (call,) = [c for c in fake_vllm.CALLS if c[0] == "generate"]  # the whole batch in one call
    _, prompts, params, use_tqdm = call
    assert use_tqdm is False
    assert prompts == [{"prompt_token_ids": [1, 2, 3]}, {"prompt_token_ids": [1, 2, 3]}, {"prompt_token_ids": [4, 5]}]
    # one request per sample (n=1), each with its own seed: a sample does not depend on its batch
    assert [p.n for p in params] == [1, 1, 1] and [p.seed for p in params] == [11, 12, 13]
    assert [p.stop for p in params] == [["\ndef", "\nclass"], ["\ndef", "\nclass"], None]
    assert {(p.temperature, p.top_p, p.top_k, p.max_tokens) for p in params} == {(0.8, 0.9, 5, 32)}
    # vLLM's finish reasons in the local loop's words; tokens counted from the output's ids
    assert done[("a" * 32, 0)].text == "    return 11\n" and done[("a" * 32, 0)].reason == "stop"
    assert done[("a" * 32, 0)].tokens == 5
    assert done[("b" * 32, 0)].reason == "length" and done[("b" * 32, 0)].tokens == 32
    assert backend.counters()["model_loads"] == 1 and any("vLLM" in line for line in lines)
    assert backend.identity() == {"backend": "vllm"}  # its samples are not the transformers loop's


def test_vllm_greedy_sends_no_seed_and_leaves_off_settings_out(fake_vllm: Any) -> None:
    backend, _ = _backend(Sampling(max_new_tokens=8))
    _run(backend, [Job(("c" * 32, 0), "x", (7,), (), 99)])
    (params,) = [c[2] for c in fake_vllm.CALLS if c[0] == "generate"]
    assert params[0].seed is None and params[0].temperature == 0.0 and params[0].max_tokens == 8
    assert params[0].top_k == 0  # top_k off: not sent, vLLM's own default stands


def test_vllm_chat_replies_end_after_their_first_code_block(fake_vllm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_vllm, "answer", lambda ids, p: ("Sure:\n```python\nx = 1\n```\nExplained at length", 30, "length", None))
    backend, _ = _backend(Sampling(temperature=0.5))
    done = _run(backend, [Job(("d" * 32, 0), "chat", (1,), (), 5, chat=True)])
    assert done[("d" * 32, 0)].text == "Sure:\n```python\nx = 1\n```" and done[("d" * 32, 0)].reason == "stop"


def test_vllm_refuses_adapters_and_quantization_in_one_line(fake_vllm: Any) -> None:
    from pytest_codeeval.generation import SourceError

    for spec in ({"peft": "/adapters/a"}, {"quantization": "4bit"}):
        backend, _ = _backend(Sampling(), **spec)
        with pytest.raises(SourceError, match=r"^--codeeval-backend=vllm: .* is not supported; use --codeeval-backend=transformers"):
            _run(backend, [Job(("e" * 32, 0), "x", (1,), (), 1)])


def test_without_vllm_installed_the_backend_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_codeeval.generation import SourceError

    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed: import raises ImportError
    backend, _ = _backend(Sampling())
    with pytest.raises(SourceError, match=r'needs the vllm package: pip install "pytest-codeeval\[vllm\]"$'):
        _run(backend, [Job(("f" * 32, 0), "x", (1,), (), 1)])


def test_a_new_sampling_field_reaches_every_backend_from_its_declaration(fake_vllm: Any) -> None:
    """The one edit a new sampling option needs: a field on Sampling (and its option row)."""

    @dataclass(frozen=True)
    class WithMinP(Sampling):
        min_p: float = knob(0.0, warper=(3, "MinPLogitsWarper"), off=0.0, extra=True, openai="min_p", vllm="min_p")

    s = WithMinP(temperature=0.7, top_k=4, min_p=0.05)
    standard, extra = s.params("openai")
    assert standard == {"temperature": 0.7, "top_p": 1.0, "max_tokens": 512} and extra == {"top_k": 4, "min_p": 0.05}
    assert [name for name, _ in s.warpers()] == ["TemperatureLogitsWarper", "TopKLogitsWarper", "MinPLogitsWarper"]
    assert WithMinP(temperature=0.7).params("openai")[1] == {}  # off: not sent
    backend, _ = _backend(s)
    _run(backend, [Job(("g" * 32, 0), "x", (1,), (), 1)])
    (params,) = [c[2] for c in fake_vllm.CALLS if c[0] == "generate"]
    assert params[0].min_p == 0.05 and params[0].top_k == 4
    # the identity and the results file take every field: no list of names to keep in step
    from dataclasses import asdict

    assert asdict(s)["min_p"] == 0.05


def test_sampling_is_read_from_settings_by_field_name() -> None:
    from pytest_codeeval.settings import Settings

    s = Settings(temperature=0.3, top_p=0.8, top_k=7, max_new_tokens=99)
    assert Sampling.of(s) == Sampling(temperature=0.3, top_p=0.8, top_k=7, max_new_tokens=99)


# -- end to end: --codeeval-backend=vllm with a local checkpoint ---------------------------------
@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, humaneval_records: list[dict[str, Any]]) -> Path:
    pytest.importorskip("transformers")
    from tests import tiny_models

    texts = [r["prompt"] + r["canonical_solution"] for r in humaneval_records]
    return tiny_models.build(tmp_path_factory.mktemp("vllm-models") / "tiny-base", texts)


def test_the_vllm_backend_end_to_end_caches_under_its_own_identity(pytester: pytest.Pytester, bench_dir: Path,
                                                                   tiny_base: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "vllm.log"
    monkeypatch.setenv("FAKE_VLLM_LOG", str(log))
    monkeypatch.setenv("CODEEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    (pytester.path / "fake_vllm_source.py").write_text(FAKE_VLLM)
    pytester.makeconftest("import sys, importlib\n"
                          "sys.modules['vllm'] = importlib.import_module('fake_vllm_source')\n")
    tasks = ["HumanEval_2", "HumanEval_7"]
    args = [*(f"benchmarks/humaneval/test_humaneval.py::test_humaneval[{t}]" for t in tasks),
            f"--codeeval-model={tiny_base}", "--codeeval-backend=vllm", "--codeeval-n=2",
            "--codeeval-temperature=0.8", "--codeeval-top-k=3", "--codeeval-max-new-tokens=24", "--codeeval-json=r.json"]
    first = pytester.runpytest(*args)
    assert first.ret == pytest.ExitCode.TESTS_FAILED, first.stdout.str()[-2000:]  # "return <seed>" solves nothing
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["engine"] for line in lines if "engine" in line] == [str(tiny_base)]  # one engine
    requests = [line for line in lines if "ids" in line]
    assert len(requests) == 4 and {r["n"] for r in requests} == {1} and len({r["seed"] for r in requests}) == 4
    assert {(r["temperature"], r["top_k"], r["max_tokens"]) for r in requests} == {(0.8, 3, 24)}
    assert all(r["stop"] for r in requests)  # HumanEval's stop sequences (base prompts)
    # the ids are the tokenizer's for the exact prompt text, as the transformers loop feeds it
    from transformers import AutoTokenizer

    from pytest_codeeval.benchmarks import load

    tok = AutoTokenizer.from_pretrained(tiny_base)
    prompts = {p.task_id: p.prompt for p in load("humaneval", None).problems}
    assert sorted(map(tuple, (r["ids"] for r in requests))) == sorted(
        tuple(tok(prompts[t.replace("_", "/")])["input_ids"]) for t in tasks for _ in range(2))
    config = json.loads((pytester.path / "r.json").read_text())["config"]
    assert config["generation"]["model_loads"] == 1 and config["generation"]["samples_generated"] == 4
    assert config["libraries"]["vllm"] is None  # the fake is no installed distribution
    meta = [json.loads(m.read_text()) for m in (tmp_path / "cache" / "generations").glob("*.meta.json")]
    assert [m["backend"] for m in meta] == ["vllm"] and meta[0]["top_k"] == 3

    # a rerun is served from the cache: no engine is started
    log.write_text("")
    again = pytester.runpytest(*args[:-1], "--codeeval-json=again.json")
    assert again.ret == pytest.ExitCode.TESTS_FAILED
    assert log.read_text() == ""
    assert json.loads((pytester.path / "again.json").read_text())["config"]["generation"]["model_loads"] == 0


def test_the_backend_option_is_checked(pytester: pytest.Pytester, bench_dir: Path) -> None:
    bad = pytester.runpytest("benchmarks/humaneval", "--codeeval-model=reference", "--codeeval-backend=tgi")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--codeeval-backend*expected one of transformers, vllm*"])
    served = pytester.runpytest("benchmarks/humaneval/test_humaneval.py::test_humaneval[HumanEval_0]",
                                "--codeeval-model=http://127.0.0.1:9/v1", "--codeeval-backend=vllm")
    assert served.ret == pytest.ExitCode.USAGE_ERROR
    served.stderr.fnmatch_lines(["ERROR: --codeeval-model=http://127.0.0.1:9/v1: --codeeval-backend=vllm load local "
                                 "weights; the server decides how its model is loaded"])


# -- the module map: every generation module imports alone, and no two import each other ----------
def _modules() -> list[str]:
    found = []
    for path in sorted(GENERATION.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def _imports(module: str) -> set[str]:
    """The pytest_codeeval.generation modules ``module`` imports, at its top or inside its
    functions (a cycle through a late import is a cycle still), but not for type checking."""
    path = REPO / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    tree = ast.parse(path.read_text())
    checking = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                for n in ast.walk(node)}
    names: set[str] = set()
    for sub in ast.walk(tree):
        if id(sub) in checking:
            continue
        if isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
            names.add(sub.module)
            names.update(f"{sub.module}.{a.name}" for a in sub.names)
        elif isinstance(sub, ast.Import):
            names.update(a.name for a in sub.names)
    known = set(_modules())
    return {n for n in names if n in known and n != module}


def test_generation_modules_import_without_cycles() -> None:
    graph = {m: _imports(m) for m in _modules()}
    assert "pytest_codeeval.generation.lm" not in graph["pytest_codeeval.generation.service"]
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == 2:
            return
        assert state.get(m) != 1, f"import cycle: {' -> '.join(path + [m])}"
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            visit(d, path + [m])
        state[m] = 2

    for m in graph:
        visit(m, [])


def test_each_generation_module_imports_alone_without_heavy_packages() -> None:
    script = ("import importlib, sys\n"
              f"for name in {_modules()!r}:\n"
              "    for m in [k for k in sys.modules if k.startswith('pytest_codeeval')]:\n"
              "        del sys.modules[m]\n"
              "    importlib.import_module(name)\n"
              "    heavy = [h for h in ('torch', 'transformers', 'openai', 'vllm') if h in sys.modules]\n"
              "    assert not heavy, (name, heavy)\n"
              "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
