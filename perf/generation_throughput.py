"""Generation throughput: the plugin's look-ahead batches against a harness-style baseline.

Same model (the embedded SmolLM2-135M-Instruct), same prompts (the first N HumanEval problems as
the plugin prompts this model: through its chat template, a reply ending at the end of its turn
or once its code block is closed; ``--mode base``: raw prompts with HumanEval's stop words),
same stop rule, greedy, on this machine's CPU, in one process, one after the other:

* baseline, as bigcode-evaluation-harness generates: one prompt per ``model.generate`` call
  (n would come from num_return_sequences; greedy needs one), stopping when every row of the
  call has produced a stop word in its generated text (a StoppingCriteria over the decoded
  text, like the harness's EndOfFunctionCriteria);
* the plugin: ``ModelSource`` told the upcoming problems, asked for each problem's programs in
  run order (look-ahead window sorted by prompt length, batches of --batch-size rows, finished
  rows leaving the batch), with an empty cache.

Prints tokens/s for both (tokens up to each sample's stop, counted the same way) and the ratio,
and how many completions are identical (greedy: they should all be).

    python perf/generation_throughput.py [--problems 32] [--max-new-tokens 256] [--batch-size N] [--mode chat|base]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_codeeval.benchmarks import load  # noqa: E402
from pytest_codeeval.benchmarks.groundtruth import cache_root  # noqa: E402
from pytest_codeeval.generation import model as models  # noqa: E402
from pytest_codeeval.generation import prompting  # noqa: E402
from pytest_codeeval.generation.decoding import Sampling, closed_code_block, first_stop  # noqa: E402
from pytest_codeeval.generation.lm import GenerationOptions, ModelSource  # noqa: E402


def _stop_at(text: str, stops: tuple[str, ...], mode: str) -> int | None:
    cut = first_stop(text, stops)
    return closed_code_block(text) if cut is None and mode == prompting.CHAT else cut


def baseline(folder: Path, problems: list, max_new_tokens: int, mode: str) -> tuple[list[str], int, float]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()

    class EndOfFunction(StoppingCriteria):
        def __init__(self, start: int, stops: tuple[str, ...]) -> None:
            self.start, self.stops = start, stops

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kw: object) -> bool:
            texts = tok.batch_decode(input_ids[:, self.start:], skip_special_tokens=True)
            return all(_stop_at(t, self.stops, mode) is not None for t in texts)

    texts, tokens = [], 0
    started = time.perf_counter()
    with torch.no_grad():
        for p in problems:
            stops = prompting.stops(p, mode)
            enc = tok(prompting.prompt_text(p, mode, tok), return_tensors="pt", add_special_tokens=mode == prompting.BASE)
            start = enc["input_ids"].shape[1]
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, num_return_sequences=1,
                                 stopping_criteria=StoppingCriteriaList([EndOfFunction(start, stops)]),
                                 pad_token_id=tok.eos_token_id)
            gen = out[0, start:].tolist()
            if tok.eos_token_id in gen:
                gen = gen[: gen.index(tok.eos_token_id) + 1]
            text = tok.decode(gen, skip_special_tokens=True)
            cut = _stop_at(text, stops, mode)
            texts.append(text if cut is None else text[:cut])
            tokens += _tokens_to_stop(tok, gen, stops, tok.eos_token_id, mode)
    return texts, tokens, time.perf_counter() - started


def _tokens_to_stop(tok: object, gen: list[int], stops: tuple[str, ...], eos: int, mode: str) -> int:
    """Tokens up to and including the one that completed the stop (or EOS), as the plugin counts."""
    for i in range(1, len(gen) + 1):
        if gen[i - 1] == eos:
            return i
        if _stop_at(tok.decode(gen[:i], skip_special_tokens=True), stops, mode) is not None:  # type: ignore[attr-defined]
            return i
    return len(gen)


def plugin(folder: Path, problems: list, max_new_tokens: int, batch_size: int | None, mode: str) -> tuple[list[str], int, float]:
    with tempfile.TemporaryDirectory() as cache:
        source = ModelSource(
            models.ModelSpec(model=str(folder), precision="fp32"),
            GenerationOptions(n=1, sampling=Sampling(max_new_tokens=max_new_tokens), batch_size=batch_size,
                              chat="on" if mode == prompting.CHAT else "off"),
            Path(cache),
        )
        source._ready()
        source._load()  # loading is not generation: the baseline's load is outside its clock too
        started = time.perf_counter()
        texts = []
        for i, p in enumerate(problems):
            source.expect(problems[i : i + 64])
            source.programs(p)
            prepared = source._prepare(p)
            texts.append(source._cache.get(prepared.hash, 0).text)  # type: ignore[union-attr]
        elapsed = time.perf_counter() - started
        return texts, source.progress.tokens, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--mode", choices=(prompting.CHAT, prompting.BASE), default=prompting.CHAT)
    parser.add_argument("--batch-size", type=int, default=None, help="plugin rows per forward (default: auto)")
    args = parser.parse_args()
    folder = models.embedded_checkpoint(cache_root())
    problems = list(load("humaneval", None).problems[: args.problems])
    import torch

    print(f"model {folder.name}, {len(problems)} HumanEval problems, {args.mode} prompts, greedy, max {args.max_new_tokens} new tokens, "
          f"torch threads {torch.get_num_threads()}")
    ours, our_tokens, our_s = plugin(folder, problems, args.max_new_tokens, args.batch_size, args.mode)
    print(f"plugin:   {our_tokens} tokens in {our_s:.1f} s = {our_tokens / our_s:.1f} tokens/s")
    base, base_tokens, base_s = baseline(folder, problems, args.max_new_tokens, args.mode)
    print(f"baseline: {base_tokens} tokens in {base_s:.1f} s = {base_tokens / base_s:.1f} tokens/s")
    same = sum(a == b for a, b in zip(ours, base))
    print(f"ratio (plugin / baseline tokens/s): {(our_tokens / our_s) / (base_tokens / base_s):.2f}x")
    print(f"identical greedy completions: {same}/{len(problems)}")
    for i, (a, b) in enumerate(zip(ours, base)):
        if a != b:
            common = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            print(f"  differs: {problems[i].task_id} from char {common}: plugin {a[common:common + 40]!r} / baseline {b[common:common + 40]!r}")


if __name__ == "__main__":
    main()
