"""Every ``--codeeval-*`` option and its ``codeeval_*`` ini twin, resolved once into :class:`Settings`.

Precedence: command line, then environment (only where an option names a variable), then the ini
file, then the default. Paths on the command line are relative to the invocation directory,
paths in the ini file to the ini file's directory. Bad values are usage errors, reported before
anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported where a threshold is parsed: a suite that never asks pays nothing
    from pytest_codeeval import gate

GROUP = "codeeval"


@dataclass(frozen=True)
class Settings:
    benchmarks: tuple[str, ...] = ()  # --codeeval-benchmark: collected from the installed package
    model: str | None = None
    generations: tuple[str, ...] = ()  # "[BENCH=]PATH" values, resolved by the replay source
    n: int | None = None
    ks: tuple[int, ...] = (1, 10, 100)
    timeout: float | None = None  # None: each benchmark's own default
    workers: int = 1
    memory_mb: int = 4096
    output_kb: int = 64
    json_path: Path | None = None
    data_dir: Path | None = None
    mbpp_split: str = "test"
    isolation: str = "auto"
    # another language's samples of a problem judged as a group (auto) or each alone (off): the
    # same verdicts either way, so not part of the results file's "config"
    compile_batch: str = "auto"
    file_mb: int = 64
    open_files: int = 256
    # generation with a local model (--codeeval-model=PATH|HUB_ID; none given: the embedded one)
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 512
    batch_size: int | None = None  # None: automatic, halved on out-of-memory
    model_copies: int | None = None  # under xdist; None: one per CUDA device (one on CPU); 0: per worker
    backend: str = "transformers"  # how a local model is decoded: transformers | vllm
    seed: int = 0
    precision: str = "auto"
    load_in_8bit: bool = False
    load_in_4bit: bool = False
    peft: str | None = None
    revision: str | None = None
    trust_remote_code: bool = False
    prefix: str = ""
    chat: str = "auto"
    fim: str | None = None  # infilling prompts' family; None: read from the tokenizer
    regenerate: bool = False
    save_generations: Path | None = None
    cache_dir: Path | None = None
    # an OpenAI-compatible endpoint (--codeeval-model=http[s]://...)
    api_model: str | None = None  # None: the only model the server lists
    # a serving engine batches what is in flight: 32 fills a decoding batch well (vLLM would take
    # up to 256; raise it there), and 4 xdist workers x 32 stay within TGI's default
    # --max-concurrent-requests of 128 (beyond it TGI answers 429)
    api_concurrency: int = 32
    api_timeout: float = 600.0
    api_retries: int = 5
    # the progress display (not part of the results file)
    progress: str = "auto"  # auto | lines | off
    progress_interval: float = 10.0  # seconds between plain progress lines
    # regression gates (not part of the results file's "config": see its "gate" block)
    fail_under: tuple[gate.Threshold, ...] = ()
    baseline: Path | None = None
    baseline_model: str | None = None
    alpha: float = 0.05
    tolerance: float = 0.0
    baseline_force: bool = False
    # where relative [BENCH=]PATH values are taken from (CLI: invocation dir; ini: its dir)
    generations_base: Path = field(default_factory=Path.cwd)

    def to_config(self) -> dict[str, Any]:
        """The part of the results file's "config" block that comes from options."""
        return {
            "model": self.model,
            "generations": list(self.generations),
            "n_samples": self.n,
            "k": list(self.ks),
            "timeout": self.timeout,
            "workers": self.workers,
            "memory_mb": self.memory_mb,
            "output_kb": self.output_kb,
            "data": str(self.data_dir) if self.data_dir else None,
            "mbpp_split": self.mbpp_split,
            "isolation": self.isolation,
            "file_mb": self.file_mb,
            "open_files": self.open_files,
            "save_generations": str(self.save_generations) if self.save_generations else None,
        }

    @property
    def quantization(self) -> str | None:
        return "4bit" if self.load_in_4bit else "8bit" if self.load_in_8bit else None


# -- parsers: each raises ValueError with a message that completes "--codeeval-x: ..." ----------
def _number(kind: Callable[[str], Any], ok: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    """A parser of one number of ``kind`` that ``ok`` accepts (NaN and infinities never)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"expected {expected}, got {text!r}") from None
        if value != value or value in (float("inf"), float("-inf")) or not ok(value):
            raise ValueError(f"expected {expected}, got {text!r}")
        return value

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_non_negative_int = _number(int, lambda v: v >= 0, "a whole number >= 0")
_positive_float = _number(float, lambda v: v > 0, "a positive number of seconds")
_temperature = _number(float, lambda v: v >= 0, "a number >= 0 (0 = greedy)")
_probability = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
_fraction = _number(float, lambda v: 0 <= v < 1, "a number between 0 and 1")
_alpha = _number(float, lambda v: 0 < v < 1, "a number between 0 and 1")
_mbpp_split = _choice("test", "validation", "train", "prompt", "full")
_isolation = _choice("auto", "namespaces", "fork", "bwrap")
_compile_batch = _choice("auto", "off")
_precision = _choice("auto", "fp32", "fp16", "bf16")
_backend = _choice("transformers", "vllm")
_progress = _choice("auto", "lines", "off")
# generation/fim.py's FAMILIES (not imported here: this module is on pytest's start-up path)
_fim = _choice("starcoder", "santacoder", "codellama", "deepseek", "qwen")


def _ks(text: str) -> tuple[int, ...]:
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    if not parts:
        raise ValueError("expected k values such as 1,10,100")
    return tuple(sorted({_positive_int(p) for p in parts}))


def _threshold(text: str) -> gate.Threshold:
    from pytest_codeeval import gate

    return gate.parse_threshold(text)


def _benchmark_names(text: str) -> tuple[str, ...]:
    """``humaneval,mbpp`` -> ("humaneval", "mbpp"); every name one the package knows."""
    from pytest_codeeval import benchmarks  # the registry: its loaders import lazily

    names = tuple(dict.fromkeys(p for p in text.replace(" ", ",").split(",") if p))
    if not names:
        raise ValueError("expected benchmark names such as humaneval,mbpp")
    known = benchmarks.names()
    for name in names:
        if name not in known:
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(known)}")
    return names


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _chat(text: str) -> str:
    if text == "auto":
        return text
    try:
        return "on" if _bool(text) else "off"
    except ValueError:
        raise ValueError(f"expected auto, on or off, got {text!r}") from None


def _workers(text: str) -> int | None:
    return None if text == "auto" else _positive_int(text)


def _copies(text: str) -> int | None:
    return None if text == "auto" else _non_negative_int(text)


SERIAL, CONTROLLER, WORKER = "serial", "controller", "worker"


def process_role(config: pytest.Config) -> str:
    """This process's part in the run: an xdist worker, an xdist controller (xdist's own rule:
    a distribution mode with test environments, and not --collect-only, where xdist stays out
    and the process collects itself), or a serial run."""
    if hasattr(config, "workerinput"):
        return WORKER
    option = config.option
    if getattr(option, "dist", "no") != "no" and getattr(option, "tx", None) and not option.collectonly:
        return CONTROLLER
    return SERIAL


def xdist_worker_count(config: pytest.Config) -> int:
    """How many xdist workers this run has (0 without xdist), seen from controller or worker."""
    env = os.environ.get("PYTEST_XDIST_WORKER_COUNT")  # set in workers
    if env:
        return int(env)
    n = getattr(config.option, "numprocesses", None)  # an int on the controller by now
    return n if isinstance(n, int) and getattr(config.option, "dist", "no") != "no" else 0


def default_workers(config: pytest.Config) -> int:
    """One sandbox slot per core and one more, shared fairly among xdist workers: a slot's
    sample and its judge take turns (each call is a round trip), so one extra slot keeps every
    core busy (perf/sandbox_throughput.py: 2 cores, 2 slots ~220, 3 slots ~239 samples/s)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, (cores + 1) // max(1, xdist_worker_count(config)))


@dataclass(frozen=True)
class Option:
    name: str  # "n" -> --codeeval-n, ini codeeval_n, Settings field per ``field``
    field: str
    help: str
    parse: Callable[[str], Any] = str
    metavar: str | None = None
    repeatable: bool = False
    env: str | None = None
    is_path: bool = False
    const: str | None = None  # a flag: given bare it means this value (ini: the value itself)
    empty_ok: bool = False  # an empty value means something (else it is a usage error)

    @property
    def flag(self) -> str:
        return f"--codeeval-{self.name}"

    @property
    def switch(self) -> bool:
        """An on/off option: bare on the command line, no value and no metavar (a value it took
        optionally would swallow the next argument: ``--codeeval-regenerate benchmarks/x``); its
        ini twin still takes true or false."""
        return self.parse is _bool

    @property
    def dest(self) -> str:
        return f"codeeval_{self.name.replace('-', '_')}"

    ini = dest


OPTIONS: tuple[Option, ...] = (
    Option("benchmark", "benchmarks", "run these benchmarks from the installed package, in any "
           "directory: the same items as `pytest benchmarks/NAME` in a clone; repeatable or a comma "
           "list (humaneval, humanevalplus, mbpp, mbpp_sanitized, mbppplus, humaneval-go, ...)",
           _benchmark_names, "NAME[,NAME...]", repeatable=True),
    Option("model", "model", "where completions come from: a checkpoint folder or hub id (a "
           "transformers causal LM; a folder holding only a peft adapter works too), the URL of an "
           "OpenAI-compatible server (http://host:port/v1: vLLM, TGI, llama.cpp, Ollama, transformers "
           "serve), 'reference' "
           "(the benchmark's own solutions, a self-check), or 'smollm2' (the embedded default "
           "when neither a model nor generations are given: SmolLM2-135M-Instruct, a weak model)",
           metavar="MODEL"),
    Option("generations", "generations", "replay completions from a generations file: JSONL "
           "(human-eval/evalplus: task_id + completion|solution) or JSON (bigcode-evaluation-"
           "harness); repeatable; BENCH=PATH names the benchmark of a .json file",
           metavar="[BENCH=]PATH", repeatable=True),
    Option("n", "n", "samples per problem (default 1; caps what a generations file holds; copies "
           "of the reference)", _positive_int, "N"),
    Option("temperature", "temperature", "sampling temperature; 0 (the default) is greedy, and then "
           "one sample is generated and stands for all n", _temperature, "T"),
    Option("top-p", "top_p", "nucleus sampling: keep the most likely tokens up to this "
           "probability mass (default 1.0: off)", _probability, "P"),
    Option("top-k", "top_k", "keep only the k most likely tokens (default 0: off)", _non_negative_int, "K"),
    Option("max-new-tokens", "max_new_tokens", "tokens generated at most per sample (default 512)",
           _positive_int, "N"),
    Option("batch-size", "batch_size", "sequences per forward pass (default auto: 32 on CPU, 128 "
           "on GPU, halved on out-of-memory)", _workers, "N|auto"),
    Option("backend", "backend", "how a local model is decoded: transformers (the built-in batched "
           "loop, default) or vllm (vLLM in this process, its own batching and prefix caching: "
           "pip install \"pytest-codeeval[vllm]\"); a URL as --codeeval-model is the server's",
           _backend, "transformers|vllm"),
    Option("model-copies", "model_copies", "under xdist (-n): how many copies of a local model the run "
           "holds, each in a generation service process the workers share (default auto: one per CUDA "
           "device, one on a CPU-only machine; 0: every worker loads its own)", _copies, "N|auto"),
    Option("seed", "seed", "seed of sampling; each sample draws from its own generator seeded by "
           "this, its prompt and its index, so reruns, -k and xdist reproduce (default 0)",
           _non_negative_int, "SEED"),
    Option("precision", "precision", "weights' dtype: auto (fp32 on CPU, bf16 or fp16 on GPU), "
           "fp32, fp16, bf16", _precision, "auto|fp32|fp16|bf16"),
    Option("load-in-8bit", "load_in_8bit", "quantize the weights to 8 bits with bitsandbytes",
           _bool, const="true"),
    Option("load-in-4bit", "load_in_4bit", "quantize the weights to 4 bits with bitsandbytes",
           _bool, const="true"),
    Option("peft", "peft", "a peft (LoRA) adapter to apply to the model: folder or hub id",
           metavar="ADAPTER"),
    Option("revision", "revision", "the model's revision on the hub (branch, tag or commit)",
           metavar="REV"),
    Option("trust-remote-code", "trust_remote_code", "let transformers run the model repository's "
           "own code", _bool, const="true"),
    Option("prefix", "prefix", "text put before every prompt (bigcode's --prefix); not part of the "
           "judged program", metavar="TEXT", empty_ok=True),
    Option("chat", "chat", "prompt through the tokenizer's chat template and extract code from "
           "the reply: bare flag or 'on' forces it, 'off' forbids it, 'auto' (default) uses it when "
           "the tokenizer has a chat template and the model's name says instruct/chat/-it",
           _chat, "auto|on|off", const="on"),
    Option("fim", "fim", "fill-in-the-middle tokens for infilling benchmarks (humaneval-infill-*) "
           "when the tokenizer does not declare them (a served model's never can): starcoder "
           "(<fim_prefix>...), santacoder (<fim-prefix>...), codellama (<PRE> ...), deepseek "
           "(<｜fim▁begin｜>...), qwen (<|fim_prefix|>...)", _fim, "FAMILY"),
    Option("api-model", "api_model", "with an endpoint URL as --codeeval-model: the served model's "
           "name (default: the only one GET /v1/models lists)", metavar="NAME"),
    Option("api-concurrency", "api_concurrency", "with an endpoint: requests kept in flight, "
           "refilled as each answers (default 32)", _positive_int, "N"),
    Option("api-timeout", "api_timeout", "with an endpoint: seconds to wait for each request's "
           "answer before retrying it (default 600)", _positive_float, "SECONDS"),
    Option("api-retries", "api_retries", "with an endpoint: retries of a failed request (timeouts, "
           "connection errors, HTTP 408/409/429/5xx), with exponential backoff and Retry-After "
           "honoured (default 5)", _non_negative_int, "N"),
    Option("progress", "progress", "progress of generation and execution (totals, percentage, ETA, "
           "samples/s, tokens/s): auto (the default: live rows on a terminal, a plain line every "
           "--codeeval-progress-interval seconds elsewhere), lines (plain lines on a terminal too), "
           "off; -q shows one compact line, -qq nothing", _progress, "auto|lines|off"),
    Option("progress-interval", "progress_interval", "seconds between plain progress lines where the "
           "output is not a terminal (default 10)", _positive_float, "SECONDS"),
    Option("regenerate", "regenerate", "generate every sample anew, ignoring the generation cache "
           "(new samples still go into it)", _bool, const="true"),
    Option("save-generations", "save_generations", "write the run's programs to this file: .json "
           "in bigcode-evaluation-harness's layout, .jsonl in human-eval/evalplus's; both replay "
           "with --codeeval-generations", metavar="PATH", is_path=True),
    Option("cache-dir", "cache_dir", "where generated samples, converted models and ground truth "
           "are cached (env CODEEVAL_CACHE; default ~/.cache/pytest-codeeval)", metavar="DIR",
           env="CODEEVAL_CACHE", is_path=True),
    Option("k", "ks", "the k values of pass@k to report (default 1,10,100; k > n is left out "
           "with a note)", _ks, "K[,K...]"),
    Option("timeout", "timeout", "CPU seconds per sample (default: the benchmark's, 3 for HumanEval; a wall-clock "
           "backstop of 3x + 1 s ends samples that sleep)",
           _positive_float, "SECONDS"),
    Option("workers", "workers", "samples executed in parallel (default auto: one per core and "
           "one more, divided among xdist workers)", _workers, "N|auto"),
    Option("memory-limit", "memory_mb", "address-space limit per sample in MiB (default 4096)",
           _positive_int, "MIB"),
    Option("output-limit", "output_kb", "stdout and stderr kept per sample in KiB (default 64)",
           _positive_int, "KIB"),
    Option("file-size-limit", "file_mb", "largest file a sample may write, in MiB (default 64)",
           _positive_int, "MIB"),
    Option("open-files", "open_files", "open files per sample (default 256)", _positive_int, "N"),
    Option("isolation", "isolation", "how samples are isolated: namespaces (no network, read-only "
           "filesystem, private process table), fork (processes only), bwrap (bubblewrap, a "
           "fresh interpreter per sample), or auto (the strongest this machine allows; the default)", _isolation, "MODE"),
    Option("compile-batch", "compile_batch", "compiled languages (MultiPL-E): auto (the default) judges a "
           "problem's samples as a group on one worker, each distinct program compiled once (Java's in one "
           "javac), each sample run alone, with the same verdicts; off judges each sample on its own",
           _compile_batch, "auto|off"),
    Option("json", "json_path", "write results (pass@k, per-problem outcomes, config, "
           "environment) to this JSON file, atomically", metavar="PATH", is_path=True),
    Option("data", "data_dir", "directory holding benchmark data (env CODEEVAL_DATA)",
           metavar="DIR", env="CODEEVAL_DATA", is_path=True),
    Option("mbpp-split", "mbpp_split", "which MBPP problems: test (task ids 11-510, the default), "
           "validation, train, prompt, or full (all 974)", _mbpp_split, "SPLIT"),
    Option("fail-under", "fail_under", "gate: exit with status 10 unless BENCH's pass@K (the estimate) "
           "is at least VALUE, e.g. humaneval:pass@1=0.30; repeatable", _threshold,
           "BENCH:pass@K=VALUE", repeatable=True),
    Option("baseline-model", "baseline_model", "evaluate this model too (the base of a fine-tune: folder "
           "or hub id) on the same problems with the same sampling, and gate on the paired "
           "difference; the candidate's adapter, precision and quantization options do not apply to it",
           metavar="MODEL"),
    Option("baseline", "baseline", "gate: compare with this results file, per problem and per "
           "benchmark (paired); exit with status 11 on a significant regression larger than the "
           "tolerance", metavar="RESULTS.json", is_path=True),
    Option("alpha", "alpha", "baseline gate: the chance of a false alarm when nothing regressed "
           "(default 0.05)", _alpha, "ALPHA"),
    Option("tolerance", "tolerance", "baseline gate: pass@1 drops up to this much are no regression "
           "(default 0)", _fraction, "DROP"),
    Option("baseline-force", "baseline_force", "baseline gate: compare even when the baseline's "
           "data or evaluation settings differ from this run's", _bool, const="true"),
)


def asked(config: pytest.Config) -> bool:
    """Whether any ``--codeeval-*`` option or ``codeeval_*`` ini value was given. Environment
    variables (CODEEVAL_DATA, CODEEVAL_CACHE) do not count: set for one project, they must not
    wake the plugin in every other."""
    for opt in OPTIONS:
        if config.getoption(opt.dest) not in (None, []) or config.getini(opt.ini) not in (None, "", []):
            return True
    return False


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup(GROUP, "code-generation evaluation (pytest-codeeval)")
    for opt in OPTIONS:
        if opt.switch:
            kind: dict[str, Any] = {"action": "store_const", "const": opt.const or "true"}
        else:
            kind = {"action": "append" if opt.repeatable else "store", "metavar": opt.metavar}
            if opt.const is not None:  # a value that may be left out (--codeeval-chat)
                kind.update(nargs="?", const=opt.const)
        group.addoption(opt.flag, dest=opt.dest, default=None, help=opt.help, **kind)
        # default None: an ini value given empty ("" or []) is told apart from one not given
        parser.addini(opt.ini, f"default for {opt.flag}: {opt.help}",
                      type="linelist" if opt.repeatable else "string", default=None)


def resolve(config: pytest.Config) -> Settings:
    """Read every option once; raise :class:`pytest.UsageError` on the first bad value."""
    values: dict[str, Any] = {}
    invocation_dir = Path(config.invocation_params.dir)
    ini_dir = Path(config.inipath).parent if config.inipath else invocation_dir
    for opt in OPTIONS:
        raw, base, origin = _raw_value(config, opt, invocation_dir, ini_dir)
        if raw is None:
            continue
        _refuse_empty(opt, raw, origin)
        if opt.field == "generations":
            values["generations"] = tuple(raw)
            values["generations_base"] = base
            continue
        try:
            if opt.field == "benchmarks":  # each value a comma list: one flat, ordered tuple
                value = tuple(dict.fromkeys(name for v in raw for name in opt.parse(v.strip())))
            elif opt.repeatable:
                value = tuple(opt.parse(v.strip()) for v in raw)
            else:
                value = opt.parse(raw.strip())
        except ValueError as e:
            raise pytest.UsageError(f"{origin}: {e}") from None
        if opt.is_path:
            value = (base / Path(value).expanduser()).resolve()
        values[opt.field] = value
    if values.get("workers") is None:
        values["workers"] = default_workers(config)
    settings = Settings(**values)
    if settings.data_dir is not None and not settings.data_dir.is_dir():
        raise pytest.UsageError(f"--codeeval-data: {settings.data_dir} is not a directory")
    if settings.model is not None and settings.generations:
        raise pytest.UsageError(
            "--codeeval-model and --codeeval-generations both given: choose one source of completions"
        )
    if settings.baseline is not None and settings.baseline_model is not None:
        raise pytest.UsageError("--codeeval-baseline and --codeeval-baseline-model both given: choose one baseline")
    if settings.load_in_8bit and settings.load_in_4bit:
        raise pytest.UsageError("--codeeval-load-in-8bit and --codeeval-load-in-4bit both given: choose one")
    if settings.save_generations is not None and settings.save_generations.suffix not in (".json", ".jsonl"):
        raise pytest.UsageError(f"--codeeval-save-generations={settings.save_generations}: the name must end in .json or .jsonl")
    return settings


def _refuse_empty(opt: Option, raw: Any, origin: str) -> None:
    """An empty value (``--codeeval-model=`` from an unset CI variable, ``codeeval_model =`` in
    an ini file) is a usage error, not the option's default: for the model that default is the
    embedded toy model, and a run that silently evaluated it would look like a real one."""
    values = [raw] if isinstance(raw, str) else list(raw)
    if opt.empty_ok or (values and all(str(v).strip() for v in values)):
        return
    default = " (that would be the embedded default model)" if opt.field == "model" else ""
    raise pytest.UsageError(f"{origin} is empty (an unset variable?): give {opt.metavar or 'a value'}, "
                            f"or leave the option out{default}")


def _raw_value(config: pytest.Config, opt: Option, invocation_dir: Path, ini_dir: Path) -> tuple[Any, Path, str]:
    """The option's raw value, where it came from, and its origin's name; (None, ...) when not
    given. A value given empty is returned as given ("" or [""]; from an ini file "" or [])."""
    cli = config.getoption(opt.dest)
    if cli is not None:
        return cli, invocation_dir, opt.flag
    if opt.env and os.environ.get(opt.env):
        return os.environ[opt.env], invocation_dir, opt.env
    ini = config.getini(opt.ini)
    if ini is not None:
        return ini, ini_dir, f"{opt.ini} (ini)"
    return None, invocation_dir, opt.flag
