"""Fill-in-the-middle prompts: prefix and suffix around a hole, in a model family's tokens.

Each family was trained on one layout, prefix-suffix-middle (PSM): the prefix marker, the code
before the hole, the suffix marker, the code after it, the middle marker; the model then writes
the middle and ends it with its end-of-middle token.

* starcoder: ``<fim_prefix>{prefix}<fim_suffix>{suffix}<fim_middle>``, ends at ``<|endoftext|>``;
* santacoder: ``<fim-prefix>{prefix}<fim-suffix>{suffix}<fim-middle>``, ends at ``<|endoftext|>``;
* codellama: ``<PRE> {prefix} <SUF>{suffix} <MID>``, ends at ``<EOT>``;
* deepseek: ``<｜fim▁begin｜>{prefix}<｜fim▁hole｜>{suffix}<｜fim▁end｜>``, ends at its EOS;
* qwen: ``<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>``, ends at ``<|endoftext|>``.

(StarCoder and StarCoder2 spell the markers with underscores, bigcode/santacoder with hyphens, as
bigcode-evaluation-harness's santacoder_fim task does.) The family is read from the tokenizer
where its vocabulary declares the markers (:func:`detect`), else named with ``--codeeval-fim``.
The prompt text enters the generation cache's key, so two layouts never share a cached sample.
Knows nothing of pytest or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FimFormat:
    family: str
    prefix: str  # the marker text before the code prefix (CodeLlama's holds a space)
    suffix: str
    middle: str
    # how the markers are spelled in the vocabulary (CodeLlama's sentencepiece "▁<PRE>")
    vocab: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
    # text that ends a middle, should a server or a tokenizer hand the end token back as text
    ends: tuple[str, ...] = ()

    def prompt(self, prefix: str, suffix: str) -> str:
        """The exact text the model continues: prefix-suffix-middle."""
        return f"{self.prefix}{prefix}{self.suffix}{suffix}{self.middle}"


def _same(*tokens: str) -> tuple[str, ...]:
    return tokens


FAMILIES: dict[str, FimFormat] = {
    f.family: f for f in (
        FimFormat("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>",
                  (_same("<fim_prefix>"), _same("<fim_suffix>"), _same("<fim_middle>")),
                  ("<|endoftext|>", "<file_sep>")),
        FimFormat("santacoder", "<fim-prefix>", "<fim-suffix>", "<fim-middle>",
                  (_same("<fim-prefix>"), _same("<fim-suffix>"), _same("<fim-middle>")),
                  ("<|endoftext|>",)),
        FimFormat("codellama", "<PRE> ", " <SUF>", " <MID>",
                  (("▁<PRE>", "<PRE>"), ("▁<SUF>", "<SUF>"), ("▁<MID>", "<MID>")),
                  ("<EOT>",)),
        FimFormat("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>",
                  (_same("<｜fim▁begin｜>"), _same("<｜fim▁hole｜>"), _same("<｜fim▁end｜>")),
                  ("<｜end▁of▁sentence｜>", "<|EOT|>")),
        FimFormat("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>",
                  (_same("<|fim_prefix|>"), _same("<|fim_suffix|>"), _same("<|fim_middle|>")),
                  ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>", "<|im_end|>")),
    )
}
# tokens that end a middle but are not the tokenizer's EOS (CodeLlama's <EOT>, id 32010)
_END_TOKENS = ("▁<EOT>", "<EOT>")


def parse_family(text: str) -> str:
    """``--codeeval-fim``'s value; a ValueError completing "--codeeval-fim: ..." otherwise."""
    name = text.strip().lower()
    if name not in FAMILIES:
        raise ValueError(f"expected one of {', '.join(FAMILIES)}, got {text!r}")
    return name


def _vocab(tokenizer: Any) -> dict[str, int]:
    try:
        return dict(tokenizer.get_vocab())
    except (AttributeError, NotImplementedError, TypeError):
        return {}


def _marker_ids(fmt: FimFormat, vocab: dict[str, int]) -> list[int] | None:
    ids = []
    for spellings in fmt.vocab:
        found = next((vocab[s] for s in spellings if s in vocab), None)
        if found is None:
            return None
        ids.append(found)
    return ids


def detect(tokenizer: Any) -> FimFormat | None:
    """The family whose three markers the tokenizer's vocabulary declares, if any."""
    if tokenizer is None:
        return None
    vocab = _vocab(tokenizer)
    return next((fmt for fmt in FAMILIES.values() if _marker_ids(fmt, vocab) is not None), None)


def encode(tokenizer: Any, fmt: FimFormat, prefix: str, suffix: str) -> tuple[str, tuple[int, ...]]:
    """The prompt's text and token ids. The text is tokenized as a whole (the tokenizer's BOS
    included) when that yields each marker as its own token; otherwise, where the vocabulary
    holds the markers under another spelling (CodeLlama's "▁<PRE>"), the ids are put together
    piece by piece: BOS, marker, prefix, marker, suffix, marker."""
    text = fmt.prompt(prefix, suffix)
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    markers = _marker_ids(fmt, _vocab(tokenizer))
    if markers is None or _in_order(ids, markers):
        return text, tuple(ids)
    head = list(tokenizer("", add_special_tokens=True)["input_ids"])

    def piece(s: str) -> list[int]:
        return list(tokenizer(s, add_special_tokens=False)["input_ids"]) if s else []

    pre, suf, mid = markers
    return text, tuple(head + [pre] + piece(prefix) + [suf] + piece(suffix) + [mid])


def _in_order(ids: list[int], markers: list[int]) -> bool:
    at = 0
    for m in markers:
        try:
            at = ids.index(m, at) + 1
        except ValueError:
            return False
    return True


def end_token_ids(tokenizer: Any) -> set[int]:
    """Ids that end a middle besides the EOS (CodeLlama's ``<EOT>``), where the vocabulary has them."""
    vocab = _vocab(tokenizer)
    return {vocab[t] for t in _END_TOKENS if t in vocab}
