"""Batched decoding in which every row stops on its own and stops costing compute.

``model.generate`` keeps a finished row in the batch (padding it) until the last row is done,
and checks string stops against the prompt as well. This loop instead:

* prefills each distinct prompt once (left padded, position ids from the mask) and repeats its
  key/value cache for the n samples that share it;
* keeps at most ``max_rows`` rows in the forward pass and lets waiting requests join as rows
  end (continuous batching), so long rows do not run on alone;
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
from dataclasses import dataclass, field, fields
from typing import Any


def knob(default: Any, *, warper: tuple[int, str] | None = None, off: Any = None, extra: bool = False,
         **names: str) -> Any:
    """A :class:`Sampling` field and how every backend maps it, so that a new sampling option is
    one field here (plus its row in the option table): ``warper`` (its rank, the transformers
    logits warper that applies it in the local loop), ``off`` (the value that means "not used":
    no warper, nothing sent), ``extra`` (not an OpenAI parameter: sent in the request's extra
    body), and its name in each API (``openai=``, ``vllm=``; an API without it: absent)."""
    return field(default=default, metadata={"warper": warper, "off": off, "extra": extra, "names": names})


@dataclass(frozen=True)
class Sampling:
    """How tokens are chosen. ``temperature == 0`` is greedy decoding."""

    temperature: float = knob(0.0, warper=(0, "TemperatureLogitsWarper"), openai="temperature", vllm="temperature")
    top_p: float = knob(1.0, warper=(2, "TopPLogitsWarper"), off=1.0, openai="top_p", vllm="top_p")
    # not an OpenAI parameter: vLLM and llama.cpp's server take it, transformers serve refuses it
    top_k: int = knob(0, warper=(1, "TopKLogitsWarper"), off=0, extra=True, openai="top_k", vllm="top_k")
    max_new_tokens: int = knob(512, openai="max_tokens", vllm="max_tokens")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @classmethod
    def of(cls, settings: Any) -> Sampling:
        """The sampling settings named like this class's fields in ``settings`` (the plugin's
        Settings: a new field needs no edit where the options are read)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def params(self, api: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The request parameters of ``api`` (``openai``, ``vllm``) for these settings, as
        (standard, extra): a field the API lacks is left out, and an ``extra`` one is left out
        when it is off (a server that does not know it may refuse it)."""
        standard: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for f in fields(self):
            name = f.metadata.get("names", {}).get(api)
            if name is None:
                continue
            value = getattr(self, f.name)
            if f.metadata.get("extra"):
                if value != f.metadata.get("off"):
                    extra[name] = value
            else:
                standard[name] = value
        return standard, extra

    def warpers(self) -> list[tuple[str, Any]]:
        """The transformers logits warpers these settings need, in the order transformers
        applies them: (class name, value); none for greedy decoding."""
        if self.greedy:
            return []
        found = []
        for f in fields(self):
            warper = f.metadata.get("warper")
            value = getattr(self, f.name)
            if warper is not None and value != f.metadata.get("off"):
                found.append((warper, value))
        return [(name, value) for (_, name), value in sorted(found, key=lambda w: w[0][0])]


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
    max_rows: int | None = None,
    more: Callable[[int], Sequence[Request]] | None = None,
) -> BatchStats:
    """Generate every request; call ``on_finish`` for each as soon as it ends.

    At most ``max_rows`` rows are in the forward pass (all of them when None). When rows end and
    requests are still waiting, the waiting ones are prefilled and join the batch (their key/value
    caches and masks left-padded to a common length), so a few long rows do not run on alone
    while others wait. ``more(room)``, when given, is asked for up to ``room`` further requests
    whenever the batch has room and none are waiting (a generation service feeding requests that
    arrive while it decodes); the call returns once nothing is running or waiting.
    """
    import torch

    started = time.perf_counter()
    requests = list(requests)
    stats = BatchStats()
    device = next(model.parameters()).device
    _speed_up_small_heads(model)
    limit = max_rows or max(1, len(requests))
    waiting = list(range(len(requests)))  # request indices not yet in the batch, in order
    generated: list[list[int]] = [[] for _ in requests]
    generators = _generators(requests, sampling, device)
    warpers = _warpers(sampling)
    batch: _Batch | None = None

    def admit(new: Sequence[Request]) -> None:
        first = len(requests)
        requests.extend(new)
        generated.extend([] for _ in new)
        if generators is not None:
            generators.extend(_generators(new, sampling, device) or ())
        waiting.extend(range(first, len(requests)))

    while True:
        if more is not None and not waiting and (batch is None or len(batch.alive) < limit):
            admit(more(limit - (len(batch.alive) if batch else 0)))
        if waiting and (batch is None or (len(batch.alive) < limit and batch.can_merge)):
            room = limit - (len(batch.alive) if batch else 0)
            joining, waiting = waiting[:room], waiting[room:]
            batch = _Batch.merge(batch, _prefill_in_chunks(model, tokenizer, requests, joining, device))
        if batch is None or not batch.alive:
            break
        stats.forward_rows += len(batch.alive)
        next_tokens = _choose(batch.logits, sampling, warpers,
                              [generators[i] for i in batch.alive] if generators else None)
        keep: list[int] = []
        for row, (req_index, token) in enumerate(zip(batch.alive, next_tokens.tolist())):
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
            batch = None
            continue
        if len(keep) != len(batch.alive):  # finished rows leave the batch: later steps cost less
            batch.select(keep)
            next_tokens = next_tokens[torch.tensor(keep, device=device)]
        batch.step(model, next_tokens)
    stats.rows = len(requests)
    stats.seconds = time.perf_counter() - started
    return stats


@dataclass
class _Batch:
    """The rows in the forward pass: their requests, key/value cache, mask, last positions and
    next-token logits."""

    alive: list[int]
    cache: Any
    mask: Any
    last_pos: Any
    logits: Any

    @property
    def can_merge(self) -> bool:
        """Plain growing caches only: a sliding-window layer's cache cannot be left-padded."""
        roomy = _roomy_layer_class()
        return all(isinstance(layer, roomy) for layer in self.cache.layers)

    def select(self, rows: list[int]) -> None:
        import torch

        index = torch.tensor(rows, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.last_pos, self.logits = self.mask[index], self.last_pos[index], self.logits[index]
        self.alive = [self.alive[r] for r in rows]

    def step(self, model: Any, next_tokens: Any) -> None:
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.alive), 1))], dim=1)
        self.last_pos = self.last_pos + 1
        out = model(input_ids=next_tokens[:, None], attention_mask=self.mask, position_ids=self.last_pos[:, None],
                    cache=self.cache, use_cache=True)
        self.cache = out.past_key_values
        self.logits = out.logits[:, -1, :].float()

    @staticmethod
    def merge(old: _Batch | None, new: _Batch) -> _Batch:
        """Both batches' rows in one: the shorter side's cache and mask are left-padded (masked
        positions are never attended to, and every row keeps its own positions)."""
        if old is None or not old.alive:
            return new
        import torch
        import torch.nn.functional as F

        width = max(old.mask.shape[1], new.mask.shape[1])
        pads = [width - b.mask.shape[1] for b in (old, new)]
        for mine, theirs in zip(old.cache.layers, new.cache.layers):
            keys = [F.pad(t, (0, 0, m, 0)) if m else t for t, m in zip((mine.keys, theirs.keys), pads)]
            values = [F.pad(t, (0, 0, m, 0)) if m else t for t, m in zip((mine.values, theirs.values), pads)]
            mine.store(torch.cat(keys), torch.cat(values))
        masks = [F.pad(b.mask, (m, 0)) if m else b.mask for b, m in zip((old, new), pads)]
        return _Batch(old.alive + new.alive, old.cache, torch.cat(masks),
                      torch.cat([old.last_pos, new.last_pos]), torch.cat([old.logits, new.logits]))


SMALL_HEAD_ROWS = 6  # rows up to which the output layer runs as weight @ hidden^T on CPU


def _speed_up_small_heads(model: Any) -> None:
    """On CPU in float32, compute the output layer of a few rows as ``W @ h^T``.

    MKL's sgemm for ``h @ W^T`` with 2 to 6 rows against a vocabulary-sized matrix (49152 x 576
    for SmolLM2) took 33-57 ms where one row took 10 ms, against 11-15 ms as ``W @ h^T``
    (``perf`` notes in docs/generation.md): the last rows of a batch, which decode alone, paid
    three to five times the cost of a row. Only the plain ``nn.Linear`` head is touched, by an
    instance-level ``forward``, so the model's own post-processing (logit scaling, soft-capping)
    still applies; larger batches and other devices keep the original path."""
    import torch

    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if (type(head) is not torch.nn.Linear or getattr(head, "_codeeval_small_rows", False)
            or head.weight.device.type != "cpu" or head.weight.dtype != torch.float32):
        return
    linear = head.forward

    def forward(hidden: Any) -> Any:
        rows = hidden.reshape(-1, hidden.shape[-1])
        if not 2 <= rows.shape[0] <= SMALL_HEAD_ROWS:
            return linear(hidden)
        out = torch.mm(head.weight, rows.t()).t()
        if head.bias is not None:
            out = out + head.bias
        return out.reshape(*hidden.shape[:-1], out.shape[-1])

    head.forward = forward
    head._codeeval_small_rows = True


PREFILL_TOKENS = 2048  # padded prompt tokens per prefill forward pass


def _prefill_in_chunks(model: Any, tokenizer: Any, requests: Sequence[Request], joining: list[int],
                       device: Any) -> _Batch:
    """Prefill ``joining`` in forward passes of prompts of similar length (about
    ``PREFILL_TOKENS`` padded tokens each), merged into one batch: one pass over prompts of 96
    to 226 tokens spent a third of its compute on padding."""
    by_length = sorted(joining, key=lambda i: len(requests[i].prompt_ids))
    chunks: list[list[int]] = [[]]
    prompts: set[tuple[int, ...]] = set()
    for i in by_length:
        ids = requests[i].prompt_ids
        if ids not in prompts and chunks[-1] and (len(prompts) + 1) * len(ids) > PREFILL_TOKENS:
            chunks.append([])
            prompts = set()
        prompts.add(ids)
        chunks[-1].append(i)
    batch: _Batch | None = None
    for chunk in chunks:
        part = _prefill(model, tokenizer, requests, chunk, device)
        if batch is not None and not (batch.can_merge and part.can_merge):  # pragma: no cover
            return _prefill(model, tokenizer, requests, joining, device)  # a cache that cannot be padded
        batch = _Batch.merge(batch, part)
    assert batch is not None
    return batch


def _prefill(model: Any, tokenizer: Any, requests: Sequence[Request], joining: list[int], device: Any) -> _Batch:
    """Run the prompts of ``joining`` once each (samples of one prompt share it), left padded."""
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    prompts: list[tuple[int, ...]] = []
    row_prompt: list[int] = []
    index_of: dict[tuple[int, ...], int] = {}
    for i in joining:
        ids = requests[i].prompt_ids
        if ids not in index_of:
            index_of[ids] = len(prompts)
            prompts.append(ids)
        row_prompt.append(index_of[ids])
    shared = _shared_prefix(prompts)
    cache = DynamicCache()
    if shared:
        # the prompts' common beginning (a chat template's system turn and the instruction: 48
        # of SmolLM2's ~155 tokens on HumanEval) is run once and its cache repeated; each row is
        # then [shared prefix | padding | rest of its prompt], the padding masked
        model(input_ids=torch.tensor([shared], device=device), cache=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(len(prompts))
    rests = [p[len(shared):] for p in prompts]
    width = max(len(r) for r in rests)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.tensor([[pad] * (width - len(r)) + list(r) for r in rests], device=device)
    mask = torch.tensor([[1] * len(shared) + [0] * (width - len(r)) + [1] * len(r) for r in rests], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # logits of the last position only: all of them would be prompts x length x vocabulary floats
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions[:, len(shared):], cache=cache,
                use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    expand = torch.tensor(row_prompt, device=device)
    # the n samples of a prompt share its prefill; plain layers get room to grow in place
    roomy = _roomy_layer_class()
    cache.layers = [roomy.holding(layer, expand) if type(layer) is DynamicLayer
                    else _selected(layer, expand) for layer in cache.layers]
    return _Batch(list(joining), cache, mask[expand], positions[:, -1][expand], out.logits[:, -1, :].float()[expand])


SHARED_PREFIX_TOKENS = 16  # a common beginning shorter than this is not worth a pass of its own


def _shared_prefix(prompts: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The token prefix every prompt starts with, when several prompts share a long one and each
    has at least one token after it (the last position's logits come from the second pass)."""
    if len(prompts) < 2:
        return ()
    shortest = min(len(p) for p in prompts)
    length = 0
    while length < shortest - 1 and all(p[length] == prompts[0][length] for p in prompts):
        length += 1
    return prompts[0][:length] if length >= SHARED_PREFIX_TOKENS else ()


def _selected(layer: Any, rows: Any) -> Any:
    layer.batch_select_indices(rows)
    return layer


ROOM = 128  # spare positions a cache layer keeps; it grows by this much when full

_ROOMY: Any = None


def _roomy_layer_class() -> Any:
    """The in-place cache layer class, made on first use (transformers is imported lazily)."""
    global _ROOMY
    if _ROOMY is None:
        _ROOMY = _make_roomy_layer_class()
    return _ROOMY


def _make_roomy_layer_class() -> Any:
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """A growing key/value cache layer that writes new positions in place.

        ``DynamicLayer`` concatenates the whole cache with every new token (a quarter of a
        32-row decode step on CPU was ``torch.cat``); this one keeps ``ROOM`` spare positions
        and hands attention views of the filled part."""

        def store(self, keys: Any, values: Any) -> None:
            import torch

            batch, heads, length, dim = keys.shape
            self._keys = torch.empty((batch, heads, length + ROOM, dim), dtype=keys.dtype, device=keys.device)
            self._values = torch.empty((batch, heads, length + ROOM, values.shape[-1]), dtype=values.dtype,
                                       device=values.device)
            self._keys[:, :, :length] = keys
            self._values[:, :, :length] = values
            self._views(length)

        def _views(self, length: int) -> None:
            self.length = length
            self.keys = self._keys[:, :, :length]
            self.values = self._values[:, :, :length]

        def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
            new = key_states.shape[-2]
            if self.length + new > self._keys.shape[2]:
                self.store(self.keys, self.values)
            self._keys[:, :, self.length:self.length + new] = key_states
            self._values[:, :, self.length:self.length + new] = value_states
            self._views(self.length + new)
            return self.keys, self.values

        def batch_select_indices(self, indices: Any) -> None:
            self._keys, self._values = self._keys[indices], self._values[indices]
            self._views(self.length)

        def crop(self, tokens_to_remove: int) -> None:  # pragma: no cover - not used by this loop
            self._views(self.length - abs(tokens_to_remove))

        @classmethod
        def holding(cls, layer: Any, rows: Any) -> Any:
            roomy = cls()
            roomy.is_initialized = True
            roomy.device = layer.keys.device
            roomy.store(layer.keys[rows], layer.values[rows])
            return roomy

    return RoomyLayer


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
    from transformers.generation import logits_process

    return [getattr(logits_process, name)(value) for name, value in sampling.warpers()]


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
