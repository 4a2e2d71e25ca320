"""A tokenizer's chat template and special tokens, read from its files without transformers.

A run whose samples are all cached must not import torch or transformers (about 5 s on two
cores, for nothing): the cache key needs the exact prompt text and what decides its tokens, not a
loaded tokenizer. This module reads the chat template (``chat_template.jinja``, the
``additional_chat_templates/`` folder, else ``tokenizer_config.json``'s ``chat_template``) and
the named special tokens (``tokenizer_config.json``, and the legacy ``special_tokens_map.json``
where the config lists no ``added_tokens_decoder``) the way transformers 5's
``PreTrainedTokenizerBase.from_pretrained`` does, and renders the template with jinja2 the way its
``apply_chat_template`` does: an ``ImmutableSandboxedEnvironment`` with ``trim_blocks``,
``lstrip_blocks``, the loop controls and the ``{% generation %}`` tag, the ``tojson`` filter
without HTML escaping, the globals ``raise_exception``, ``strftime_now``, ``dict`` and
``namespace``, and ``messages``, ``tools``, ``documents``, ``add_generation_prompt`` and the
special tokens as variables.

:attr:`TokenizerFiles.digest` hashes every file a tokenizer is built from. With it in the cache
identity, the key is sound even where this rendering and transformers' ever differed (a special
token only a tokenizer class's defaults know): equal keys mean equal files and equal messages,
and the model is always prompted with transformers' own rendering (``prompting.prompt_ids``).
Knows nothing of pytest, torch or transformers; jinja2 is imported on the first rendering.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

# Raised whenever what the cache key is made of changes: every cache file written before is then
# left alone (a new identity, a new file) instead of being read under a different meaning.
# 1: the prompt text rendered by transformers; 2: rendered here, and the tokenizer files' digest.
KEY_VERSION = 2

CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_TEMPLATE_DIR = "additional_chat_templates"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
# what a tokenizer is built from, by any of transformers' backends (fast, sentencepiece, BPE, WordPiece)
TOKENIZER_FILES = (CONFIG_FILE, SPECIAL_TOKENS_FILE, CHAT_TEMPLATE_FILE, "tokenizer.json", "added_tokens.json",
                   "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json", "merges.txt",
                   "vocab.txt")
# transformers 5's SPECIAL_TOKENS_ATTRIBUTES: what apply_chat_template hands the template
SPECIAL_TOKENS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")

log = logging.getLogger(__name__)


class NotCached(OSError):
    """A hub model's tokenizer files are not in the local hub cache (transformers must fetch them)."""


@dataclass(frozen=True)
class TokenizerFiles:
    """What a tokenizer's files say about prompting, and a digest of them all."""

    chat_template: str | dict[str, str] | None
    special_tokens: dict[str, str] = field(default_factory=dict)
    digest: str = ""

    def template(self) -> str:
        """The template transformers would use for a conversation without tools."""
        chosen = self.chat_template
        if isinstance(chosen, dict):
            if "default" not in chosen:
                raise ValueError(f"the tokenizer has several chat templates and none named default: {sorted(chosen)}")
            chosen = chosen["default"]
        if not chosen:
            raise ValueError("the tokenizer has no chat template")
        return chosen

    def apply_chat_template(self, messages: Sequence[dict[str, Any]], tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        """The text transformers' ``tokenizer.apply_chat_template(messages, tokenize=False,
        add_generation_prompt=...)`` gives (its signature, so prompting works on either)."""
        if tokenize:
            raise ValueError("TokenizerFiles renders text only (tokenize=False)")
        return render(self.template(), messages, add_generation_prompt, self.special_tokens)


def render(template: str, messages: Sequence[dict[str, Any]], add_generation_prompt: bool,
           special_tokens: dict[str, str]) -> str:
    """``template`` over ``messages``, as transformers renders chat templates."""
    # transformers passes the special tokens first and lets its own arguments win
    variables = {**special_tokens, "messages": [dict(m) for m in messages], "tools": None, "documents": None,
                 "add_generation_prompt": add_generation_prompt}
    return _compile(template).render(**variables)


@lru_cache(maxsize=8)
def _compile(template: str) -> Any:
    import jinja2.ext
    import jinja2.nodes
    import jinja2.utils
    from jinja2.exceptions import SecurityError, TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Generation(jinja2.ext.Extension):
        """``{% generation %}...{% endgeneration %}`` (marks assistant tokens in training
        templates): transformers renders the body unchanged when it is not tracking masks."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return str(caller())

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    class TemplateDict:
        def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
            return dict(*args, **kwargs)

        def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
            return dict.fromkeys(*args, **kwargs)

    class TemplateNamespace(jinja2.utils.Namespace):
        def __init__(*args: Any, **kwargs: Any) -> None:  # jinja's own signature trick
            self, args = args[0], args[1:]
            attrs = dict(*args, **kwargs)
            for name in attrs:
                TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__init__(self, attrs)

        def __setitem__(self, name: str, value: Any) -> None:
            TemplateNamespace._check_name(name)
            jinja2.utils.Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check_name(name: Any) -> None:
            if isinstance(name, str) and name.startswith("_"):
                raise SecurityError(f"chat templates cannot store underscore-prefixed attributes on a namespace: {name!r}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    env.globals["dict"] = TemplateDict()
    env.globals["namespace"] = TemplateNamespace
    return env.from_string(template)


class LightTokenizer:
    """A tokenizer as far as the cache key needs it, without transformers: the chat template,
    its rendering (:meth:`apply_chat_template`) and the files' :meth:`identity`. Anything else
    (tokenizing, the vocabulary) loads the transformers tokenizer with ``load`` on first use.

    Tokenizing a prompt this class rendered tokenizes transformers' own rendering of the same
    messages, so the model is prompted exactly as before even where the two texts ever differed
    (then a debug line says so; the key stays sound: the files' digest is in the identity)."""

    def __init__(self, files: TokenizerFiles, load: Callable[[], Any]) -> None:
        self.files = files
        self._load = load
        self._real: Any = None
        self._rendered: dict[str, tuple[list[dict[str, Any]], bool]] = {}

    @property
    def chat_template(self) -> str | dict[str, str] | None:
        return self.files.chat_template

    @property
    def loaded(self) -> bool:
        """Whether transformers' tokenizer was needed (something was tokenized)."""
        return self._real is not None

    def identity(self) -> dict[str, Any]:
        """What the cache identity holds of the tokenizer: its files' digest and the key's version."""
        return {"tokenizer": self.files.digest, "key": KEY_VERSION}

    def apply_chat_template(self, messages: Sequence[dict[str, Any]], tokenize: bool = False,
                            add_generation_prompt: bool = False) -> str:
        text = self.files.apply_chat_template(messages, tokenize, add_generation_prompt)
        self._rendered[text] = ([dict(m) for m in messages], add_generation_prompt)
        return text

    def real(self) -> Any:
        """The transformers tokenizer (loaded once, on first need)."""
        if self._real is None:
            self._real = self._load()
        return self._real

    def __call__(self, text: str, **kwargs: Any) -> Any:
        real = self.real()
        rendered = self._rendered.get(text)
        if rendered is not None:
            theirs = real.apply_chat_template(rendered[0], tokenize=False, add_generation_prompt=rendered[1])
            if theirs != text:
                log.debug("transformers renders the chat template differently; prompting with its text:\n%r\n%r",
                          text, theirs)
                text = theirs
        return real(text, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never load a tokenizer for a private or special lookup
            raise AttributeError(name)
        return getattr(self.real(), name)


# -- reading the files ------------------------------------------------------------------------
def read(model: str, revision: str | None = None) -> TokenizerFiles:
    """The tokenizer files of ``model``: a local folder, or a hub id whose files are in the local
    hub cache (else :class:`NotCached`)."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        folder = _hub_snapshot(model, revision)
    return read_folder(folder)


def read_folder(folder: Path) -> TokenizerFiles:
    """:func:`read` for a folder holding a tokenizer's files."""
    files = [folder / name for name in TOKENIZER_FILES]
    extra = sorted((folder / CHAT_TEMPLATE_DIR).glob("*.jinja")) if (folder / CHAT_TEMPLATE_DIR).is_dir() else []
    remote_code = sorted(folder.glob("tokenization*.py"))  # --codeeval-trust-remote-code tokenizers
    present = [f for f in [*files, *extra, *remote_code] if f.is_file()]
    h = hashlib.sha256()
    for f in present:
        h.update(f"{f.relative_to(folder).as_posix()}\0{_sha256(f)}\n".encode())
    config = _json(folder / CONFIG_FILE)
    return TokenizerFiles(_chat_template(folder, config, extra), _special_tokens(folder, config), h.hexdigest()[:24])


def _chat_template(folder: Path, config: dict[str, Any], extra: list[Path]) -> str | dict[str, str] | None:
    """Template files win over the config's entry; several templates make a dict by name."""
    templates: dict[str, str] = {}
    if (folder / CHAT_TEMPLATE_FILE).is_file():
        templates["default"] = (folder / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
    for f in extra:
        templates[f.name.removesuffix(".jinja")] = f.read_text(encoding="utf-8")
    if len(templates) == 1 and "default" in templates:
        return templates["default"]
    if templates:
        return templates
    found = config.get("chat_template")
    if isinstance(found, list):  # [{"name": ..., "template": ...}], as older transformers saved several
        return {str(t["name"]): str(t["template"]) for t in found if isinstance(t, dict) and "name" in t}
    return found if isinstance(found, (str, dict)) else None


def _special_tokens(folder: Path, config: dict[str, Any]) -> dict[str, str]:
    values = dict(config)
    if "added_tokens_decoder" not in config:  # transformers reads the legacy map only then
        values.update(_json(folder / SPECIAL_TOKENS_FILE))
    out = {}
    for name in SPECIAL_TOKENS:
        value = values.get(name)
        if isinstance(value, dict):  # a serialized AddedToken
            value = value.get("content")
        if value is not None:
            out[name] = str(value)
    return out


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    return value if isinstance(value, dict) else {}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _hub_snapshot(model_id: str, revision: str | None) -> Path:
    """The local hub cache's snapshot folder holding ``model_id``'s tokenizer config."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(model_id, CONFIG_FILE, revision=revision)
    if not isinstance(found, str):
        raise NotCached(f"{model_id}: {CONFIG_FILE} is not in the local hub cache")
    return Path(found).parent
