"""Batched decoding in which every row stops on its own and stops costing compute.

``model.generate`` keeps a finished row in the batch (padding it) until the last row is done,
and checks string stops against the prompt as well. This loop instead:

* prefills each distinct prompt once (left padded, position ids from the mask) and repeats its
  key/value cache for the n samples that share it;
* after every step, drops the rows that ended (EOS, a stop sequence in the *generated* text, or
  the token budget) from the batch and the cache, so the forward pass shrinks as rows finish;
* hands each finished row to a callback at once (the caller persists it before going on);
* samples with a generator per row, seeded per sample, so that a sample's tokens depend on its
  seed, not on which other rows shared its batch (``-k``, xdist and resumed runs reproduce).

Knows nothing of pytest or of benchmarks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Sampling:
    """How tokens are chosen. ``temperature == 0`` is greedy decoding."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 512

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class Request:
    """One sample to generate: a tokenized prompt, where to stop, and its own seed."""

    key: Any  # the caller's handle, returned with the result
    prompt_ids: tuple[int, ...]
    stops: tuple[str, ...] = ()
    seed: int = 0
    # chat replies: end once a fenced code block has been closed (after any </think>), instead
    # of paying for the explanation that usually follows the code
    until_code_block: bool = False


@dataclass(frozen=True)
class Finished:
    request: Request
    text: str  # generated text, cut before the first stop sequence
    tokens: int  # tokens generated for it (the stop's own tokens included)
    reason: str  # "stop" | "eos" | "length"
    token_ids: tuple[int, ...] = ()  # what was generated, the ending token excluded


@dataclass
class BatchStats:
    rows: int = 0
    tokens: int = 0
    seconds: float = 0.0
    forward_rows: int = 0  # sum over steps of the rows in the forward pass (the compute spent)


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index of the earliest stop sequence in ``text``, if any."""
    found = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(found) if found else None


def closed_code_block(text: str) -> int | None:
    """End of the first fenced code block that has been closed, if any, looking past a
    ``<think>`` section (whose drafts may hold fences of their own)."""
    start = 0
    if "<think>" in text:
        end_think = text.find("</think>")
        if end_think < 0:
            return None
        start = end_think + len("</think>")
    opening = text.find("```", start)
    if opening < 0:
        return None
    line_end = text.find("\n", opening)
    if line_end < 0:
        return None
    closing = text.find("```", line_end)
    if closing < 0:
        return None
    return closing + 3


def generate(
    model: Any,
    tokenizer: Any,
    requests: Sequence[Request],
    sampling: Sampling,
    eos_ids: set[int],
    on_finish: Callable[[Finished], None],
) -> BatchStats:
    """Generate every request in one batch; call ``on_finish`` for each as soon as it ends."""
    import torch

    started = time.perf_counter()
    stats = BatchStats(rows=len(requests))
    if not requests:
        return stats
    device = next(model.parameters()).device
    # one prefill row per distinct prompt
    prompts: list[tuple[int, ...]] = []
    row_prompt: list[int] = []
    index_of: dict[tuple[int, ...], int] = {}
    for r in requests:
        if r.prompt_ids not in index_of:
            index_of[r.prompt_ids] = len(prompts)
            prompts.append(r.prompt_ids)
        row_prompt.append(index_of[r.prompt_ids])
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)

    from transformers import DynamicCache

    cache = DynamicCache()
    # logits of the last position only: all of them would be prompts x length x vocabulary floats
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, cache=cache,
                use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    expand = torch.tensor(row_prompt, device=device)
    logits = out.logits[:, -1, :].float()[expand]
    if len(prompts) != len(requests) or row_prompt != list(range(len(prompts))):
        cache.batch_select_indices(expand)  # the n samples of a prompt share its prefill
    mask = mask[expand]
    last_pos = positions[:, -1][expand]

    alive = list(range(len(requests)))  # request index of each row in the batch
    generated: list[list[int]] = [[] for _ in requests]
    generators = _generators(requests, sampling, device)
    warpers = _warpers(sampling)

    for step in range(sampling.max_new_tokens):
        stats.forward_rows += len(alive)
        next_tokens = _choose(logits, sampling, warpers, [generators[i] for i in alive] if generators else None)
        keep: list[int] = []
        for row, (req_index, token) in enumerate(zip(alive, next_tokens.tolist())):
            req = requests[req_index]
            ids = generated[req_index]
            if token in eos_ids:
                stats.tokens += len(ids) + 1
                on_finish(Finished(req, tokenizer.decode(ids, skip_special_tokens=True), len(ids) + 1, "eos", tuple(ids)))
                continue
            ids.append(token)
            text = tokenizer.decode(ids, skip_special_tokens=True)
            cut = first_stop(text, req.stops)
            if cut is None and req.until_code_block:
                cut = closed_code_block(text)
            if cut is not None:
                stats.tokens += len(ids)
                on_finish(Finished(req, text[:cut], len(ids), "stop", tuple(ids)))
            elif len(ids) >= sampling.max_new_tokens:
                stats.tokens += len(ids)
                on_finish(Finished(req, text, len(ids), "length", tuple(ids)))
            else:
                keep.append(row)
        if not keep:
            break
        if len(keep) != len(alive):  # finished rows leave the batch: later steps cost less
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, last_pos, next_tokens = mask[index], last_pos[index], next_tokens[index]
            alive = [alive[r] for r in keep]
        mask = torch.cat([mask, mask.new_ones((len(alive), 1))], dim=1)
        last_pos = last_pos + 1
        out = model(input_ids=next_tokens[:, None], attention_mask=mask, position_ids=last_pos[:, None],
                    cache=cache, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[:, -1, :].float()
    stats.seconds = time.perf_counter() - started
    return stats


def _generators(requests: Sequence[Request], sampling: Sampling, device: Any) -> list[Any] | None:
    if sampling.greedy:
        return None
    import torch

    gens = []
    for r in requests:
        g = torch.Generator(device=device)
        g.manual_seed(r.seed & 0x7FFF_FFFF_FFFF_FFFF)
        gens.append(g)
    return gens


def _warpers(sampling: Sampling) -> list[Any]:
    if sampling.greedy:
        return []
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    # the order transformers applies them in
    warpers: list[Any] = [TemperatureLogitsWarper(sampling.temperature)]
    if sampling.top_k > 0:
        warpers.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        warpers.append(TopPLogitsWarper(sampling.top_p))
    return warpers


def _choose(logits: Any, sampling: Sampling, warpers: list[Any], generators: list[Any] | None) -> Any:
    import torch

    if generators is None:
        return logits.argmax(dim=-1)
    for w in warpers:
        logits = w(None, logits)
    # Gumbel-max with each row's own noise: the same draw as sampling from softmax(logits), but
    # the randomness of a row comes only from its own generator.
    noise = torch.stack([torch.rand(logits.shape[-1], generator=g, device=logits.device) for g in generators])
    gumbel = -torch.log(-torch.log(noise.clamp(min=1e-20, max=1 - 1e-7)))
    return (logits + gumbel).argmax(dim=-1)
