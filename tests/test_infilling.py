"""HumanEval infilling (fill-in-the-middle): the four benchmarks end to end with the reference
and replayed middles, the prompt layouts of each model family, and their usage errors."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval import settings
from pytest_codeeval.benchmarks import infilling
from pytest_codeeval.generation import fim, prompting
from tests.conftest import REPO, SHARED_DATA, write_jsonl
from tests.fake_openai import JsonHandler, serving

VARIANTS = list(infilling.VARIANTS)
FILES = {name: spec[0] for name, spec in infilling.VARIANTS.items()}
TOTAL = {"humaneval-infill-single": 1033, "humaneval-infill-multi": 5815, "humaneval-infill-span": 1640,
         "humaneval-infill-span-light": 164}
SLICE = "HumanEval_32_"  # poly: its tests call a helper defined in HumanEval's prompt (the prelude)


@pytest.fixture(scope="session")
def infill_data() -> Path:
    path = Path(os.environ.get("CODEEVAL_DATA") or SHARED_DATA)
    if not all((path / "infilling" / f).is_file() for f in FILES.values()):
        pytest.skip(f"HumanEval infilling data not found in {path}/infilling (set CODEEVAL_DATA)")
    return path


@pytest.fixture(scope="session")
def records(infill_data: Path) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, filename in FILES.items():
        with gzip.open(infill_data / "infilling" / filename, "rt") as f:
            out[name] = [json.loads(line) for line in f]
    return out


@pytest.fixture
def infill_env(pytester: pytest.Pytester, infill_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in VARIANTS:
        shutil.copytree(REPO / "benchmarks" / name, pytester.path / "benchmarks" / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("CODEEVAL_DATA", str(infill_data))
    monkeypatch.setenv("CODEEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return pytester.path / "benchmarks"


def _in_slice(record: dict[str, Any]) -> bool:
    return record["task_id"].replace("/", "_").find(SLICE) >= 0


def _counts(doc: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {name: (len(ps), sum(p["c"] for p in ps.values())) for name, ps in doc["problems"].items()}


# -- the benchmarks with the reference and replayed middles ---------------------------------
@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_reference_middles_pass_a_slice_of_every_variant(pytester: pytest.Pytester, infill_env: Path,
                                                               records: dict[str, list[dict[str, Any]]],
                                                               xdist: list[str]) -> None:
    """HumanEval/32's holes in all four variants: prefix + canonical middle + suffix passes, with
    HumanEval's prompt as the judge's prelude (the tests call ``poly``, which a prefix cut
    mid-function cannot define); the saved generations' completion is the middle itself."""
    expected = {name: sum(map(_in_slice, rs)) for name, rs in records.items()}
    assert all(expected.values())
    result = pytester.runpytest(*[f"benchmarks/{n}" for n in VARIANTS], "-k", SLICE, "--codeeval-model=reference",
                                "--codeeval-json=r.json", "--codeeval-save-generations=middles.jsonl", *xdist)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=sum(expected.values()))
    doc = json.loads((pytester.path / "r.json").read_text())
    assert _counts(doc) == {name: (k, k) for name, k in expected.items()}
    saved = [json.loads(line) for line in (pytester.path / "middles.jsonl").read_text().splitlines()]
    canonical = {r["task_id"]: r["canonical_solution"] for rs in records.values() for r in rs if _in_slice(r)}
    assert {s["task_id"]: s["completion"] for s in saved} == canonical


def test_replayed_middles_are_judged_between_prefix_and_suffix(pytester: pytest.Pytester, infill_env: Path,
                                                                 records: dict[str, list[dict[str, Any]]]) -> None:
    """A human-eval-infilling samples file (task_id + completion = the middle): right middles
    pass between prefix and suffix, a wrong middle fails, and so does a whole program that
    leaves the suffix out."""
    chosen = {r["task_id"]: r for r in records["humaneval-infill-single"] if _in_slice(r)}
    rows = [{"task_id": t, "completion": r["canonical_solution"]} for t, r in chosen.items()]
    wrong, cut = "SingleLineInfilling/HumanEval/32/L0", "SingleLineInfilling/HumanEval/32/L9"
    rows = [row for row in rows if row["task_id"] != cut]
    next(row for row in rows if row["task_id"] == wrong)["completion"] = "    return None\n"
    # a whole program ("solution") is judged as given: here the right middle without the
    # suffix's "return begin", which returns None
    rows.append({"task_id": cut, "solution": chosen[cut]["prompt"] + chosen[cut]["canonical_solution"]})
    assert chosen[cut]["suffix"] == "    return begin\n"
    write_jsonl(pytester.path / "samples.jsonl", rows)
    result = pytester.runpytest("benchmarks/humaneval-infill-single", "-k", SLICE,
                                "--codeeval-generations=samples.jsonl", "--codeeval-json=r.json")
    result.assert_outcomes(passed=len(chosen) - 2, failed=2)
    by_task = json.loads((pytester.path / "r.json").read_text())["problems"]["humaneval-infill-single"]
    assert {t for t, p in by_task.items() if p["c"] == 0} == {wrong, cut} and len(by_task) == len(chosen)


@pytest.mark.skipif(not os.environ.get("CODEEVAL_SLOW"), reason="2.5 min on 2 idle cores (7 min under load): CODEEVAL_SLOW=1")
@pytest.mark.slow
def test_every_reference_middle_passes_all_four_variants(pytester: pytest.Pytester, infill_env: Path) -> None:
    """The data and the program layout, whole: all 8,652 records' canonical middles pass."""
    result = pytester.runpytest(*[f"benchmarks/{n}" for n in VARIANTS], "--codeeval-model=reference",
                                "--codeeval-json=r.json", "-q", "--codeeval-progress=off")
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=sum(TOTAL.values()))
    assert _counts(json.loads((pytester.path / "r.json").read_text())) == {n: (k, k) for n, k in TOTAL.items()}


def test_the_loader_builds_programs_from_prefix_middle_and_suffix(infill_data: Path,
                                                                    records: dict[str, list[dict[str, Any]]]) -> None:
    from pytest_codeeval import benchmarks

    for name in VARIANTS:
        bench = benchmarks.load(name, infill_data)
        assert len(bench.problems) == TOTAL[name] == len(records[name])
        r, p = records[name][7], bench.problems[7]
        assert p.task_id == r["task_id"] and p.infilling and p.suffix == r["suffix"]
        assert p.program_from_completion(r["canonical_solution"]) == p.reference == r["prompt"] + r["canonical_solution"] + r["suffix"]
        assert p.completion_of(p.reference) == r["canonical_solution"]
        assert p.judge_prelude.startswith(("from typing", "\n", "import", "def")) and "def " in p.judge_prelude
        assert p.tests.endswith(f"check({r['entry_point']})\n")
        assert benchmarks.owners_of(r["task_id"]) == [name]
    # another benchmark's fingerprint is unchanged by the new fields
    assert benchmarks.load("humaneval", None).problems[0].suffix is None


def test_missing_data_skips_with_where_to_put_it(pytester: pytest.Pytester, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "benchmarks" / "humaneval-infill-single", pytester.path / "benchmarks" / "humaneval-infill-single")
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("CODEEVAL_DATA", str(empty))
    result = pytester.runpytest("benchmarks/humaneval-infill-single", "--codeeval-model=reference", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines([f"*HumanEval-SingleLineInfilling.jsonl.gz not found: put it in {empty}/infilling*"])


# -- prompt layouts ---------------------------------------------------------------------------
LAYOUTS = {
    "starcoder": "<fim_prefix>def f():\n<fim_suffix>    return x\n<fim_middle>",
    "santacoder": "<fim-prefix>def f():\n<fim-suffix>    return x\n<fim-middle>",
    "codellama": "<PRE> def f():\n <SUF>    return x\n <MID>",
    "deepseek": "<｜fim▁begin｜>def f():\n<｜fim▁hole｜>    return x\n<｜fim▁end｜>",
    "qwen": "<|fim_prefix|>def f():\n<|fim_suffix|>    return x\n<|fim_middle|>",
}


@pytest.mark.parametrize("family", list(LAYOUTS))
def test_each_family_lays_out_prefix_suffix_middle(family: str) -> None:
    assert fim.FAMILIES[family].prompt("def f():\n", "    return x\n") == LAYOUTS[family]


def test_the_option_accepts_exactly_the_families_fim_knows() -> None:
    option = next(o for o in settings.OPTIONS if o.name == "fim")
    for family in fim.FAMILIES:
        assert option.parse(family) == family == fim.parse_family(family)
    with pytest.raises(ValueError, match="expected one of starcoder, santacoder, codellama, deepseek, qwen"):
        option.parse("llama")


def _tokenizer(specials: list[str], bos: str | None = None) -> Any:
    """A tiny byte-level BPE tokenizer whose vocabulary declares ``specials`` (as a family's
    tokenizer declares its fill-in-the-middle tokens)."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    eos = "<|endoftext|>"
    tok.train_from_iterator(["def f(x):\n    return x + 1\n"] * 4, trainers.BpeTrainer(
        vocab_size=300, special_tokens=[eos, *([bos] if bos else []), *specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", special_tokens=[(bos, tok.token_to_id(bos))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, bos_token=bos)


MARKERS = {
    "starcoder": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>"],
    "santacoder": ["<fim-prefix>", "<fim-suffix>", "<fim-middle>"],
    "codellama": ["▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"],  # sentencepiece's spelling
    "deepseek": ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
    "qwen": ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>"],
}


@pytest.mark.parametrize("family", list(MARKERS))
def test_the_family_is_read_from_the_tokenizer_and_its_markers_are_single_tokens(family: str) -> None:
    bos = "<s>" if family in ("codellama", "deepseek") else None
    tok = _tokenizer(MARKERS[family], bos)
    layout = fim.detect(tok)
    assert layout is not None and layout.family == family
    text, ids = fim.encode(tok, layout, "def f(x):\n", "    return x\n")
    assert text == layout.prompt("def f(x):\n", "    return x\n")
    vocab = tok.get_vocab()
    pre, suf, mid = (vocab[m] for m in MARKERS[family][:3])
    # BOS (where the tokenizer adds one), the prefix marker, the code, the suffix marker, the
    # code after the hole, and the middle marker last: the model writes what comes next
    assert ids[: 2 if bos else 1] == ((vocab[bos], pre) if bos else (pre,))
    assert ids[-1] == mid and pre in ids and suf in ids and ids.index(pre) < ids.index(suf)
    middle = tok.decode(list(ids[ids.index(pre) + 1: ids.index(suf)]))
    assert middle.strip() == "def f(x):"
    expected_ends = {vocab["▁<EOT>"]} if family == "codellama" else set()
    assert fim.end_token_ids(tok) == expected_ends


def test_a_tokenizer_without_markers_has_no_family() -> None:
    assert fim.detect(_tokenizer([])) is None
    assert fim.detect(None) is None


def test_fim_mode_programs_and_stops() -> None:
    from pytest_codeeval.problem import Problem

    p = Problem("b", "X/HumanEval/0/L0", "def f(x):\n", "assert f(1) == 2", "f", "", program_prefix="def f(x):\n",
                suffix="    return y\n")
    layout = fim.FAMILIES["qwen"]
    assert prompting.prompt_text(p, prompting.FIM, None, "# hi\n", layout) == layout.prompt("# hi\ndef f(x):\n", "    return y\n")
    assert prompting.to_program(p, prompting.FIM, "    y = x + 1\n") == "def f(x):\n    y = x + 1\n    return y\n"
    assert prompting.stops(p, prompting.FIM, layout) == layout.ends and "<|endoftext|>" in layout.ends


# -- a model end to end -----------------------------------------------------------------------
def _tiny_model(folder: Path, specials: list[str]) -> Path:
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = _tokenizer(specials)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


TWO = ["-k", "SingleLineInfilling_HumanEval_0_L0 or SingleLineInfilling_HumanEval_0_L1"]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_model_gets_its_family_prompt_and_the_middle_is_judged_in_place(
        pytester: pytest.Pytester, infill_env: Path, tmp_path: Path, xdist: list[str]) -> None:
    """A StarCoder-like tokenizer: its layout is read from it; the saved programs are prefix +
    generated middle + suffix; and a layout named with --codeeval-fim is another prompt, so it
    is generated anew instead of served from the first layout's cache entries. Under -n 2 the
    prompts go through the generation service the workers share."""
    model = _tiny_model(tmp_path / "tiny-fim", MARKERS["starcoder"])
    args = ["benchmarks/humaneval-infill-single", *TWO, f"--codeeval-model={model}", "--codeeval-max-new-tokens=6",
            "--codeeval-json=r.json", "--codeeval-save-generations=g.jsonl", *xdist]
    first = pytester.runpytest(*args)
    assert first.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), first.stdout.str()
    first.stdout.fnmatch_lines(["codeeval: generation 2/2 *"])
    doc = json.loads((pytester.path / "r.json").read_text())
    assert doc["config"]["stop_sequences"]["humaneval-infill-single"] == list(fim.FAMILIES["starcoder"].ends)
    from pytest_codeeval import benchmarks

    bench = benchmarks.load("humaneval-infill-single", Path(os.environ["CODEEVAL_DATA"]))
    for line in (pytester.path / "g.jsonl").read_text().splitlines():
        saved = json.loads(line)
        problem = bench.by_task_id[saved["task_id"]]
        assert saved["solution"] == problem.program_prefix + saved["completion"] + problem.suffix
    if xdist:  # the cache and the layouts are the serial run's to check (each -n 2 run costs ~1 min)
        return
    again = pytester.runpytest(*args)
    again.stdout.fnmatch_lines(["codeeval: generation: all 2 samples from the cache"])
    other = pytester.runpytest(*args, "--codeeval-fim=qwen")
    other.stdout.fnmatch_lines(["codeeval: generation 2/2 *"])


def test_a_model_without_fim_tokens_needs_the_option(pytester: pytest.Pytester, infill_env: Path, tmp_path: Path) -> None:
    model = _tiny_model(tmp_path / "tiny-plain", [])
    args = ["benchmarks/humaneval-infill-single", *TWO, f"--codeeval-model={model}", "--codeeval-max-new-tokens=4"]
    refused = pytester.runpytest(*args)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in refused.stdout.lines + refused.stderr.lines if "fill-in-the-middle" in line]
    assert len(errors) == 1 and (  # one line, no traceback
        f"ERROR: humaneval-infill-single needs fill-in-the-middle prompts, and for {model} its tokenizer declares no "
        "fill-in-the-middle tokens: name its family with --codeeval-fim=starcoder|santacoder|codellama|deepseek|qwen") in errors[0], errors
    named = pytester.runpytest(*args, "--codeeval-fim=deepseek")
    assert named.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), named.stdout.str()
    named.stdout.fnmatch_lines(["codeeval: generation 2/2 *"])


def test_a_bad_family_is_a_one_line_usage_error(pytester: pytest.Pytester, infill_env: Path) -> None:
    result = pytester.runpytest("benchmarks/humaneval-infill-single", "--codeeval-model=reference", "--codeeval-fim=gpt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --codeeval-fim: expected one of starcoder, santacoder, codellama, deepseek, "
                                 "qwen, got 'gpt'"])
    pytester.makeini("[pytest]\ncodeeval_fim = star\n")
    from_ini = pytester.runpytest("benchmarks/humaneval-infill-single", "--codeeval-model=reference")
    assert from_ini.ret == pytest.ExitCode.USAGE_ERROR
    from_ini.stderr.fnmatch_lines(["ERROR: codeeval_fim (ini): expected one of *, got 'star'"])


# -- a served model ----------------------------------------------------------------------------
def _fim_handler(middles: dict[tuple[str, str], str], prompts: list[dict[str, Any]]) -> type[JsonHandler]:
    """Just enough of an OpenAI-compatible server: ``/v1/completions`` answers a Qwen-layout
    infilling prompt with the record's canonical middle, then its end text and junk that would
    break the program were it not cut there."""
    qwen = fim.FAMILIES["qwen"]

    class Handler(JsonHandler):
        model = "coder"

        def do_POST(self) -> None:
            body = self.read_json()
            prompts.append(body)
            inner = body["prompt"].removeprefix(qwen.prefix).removesuffix(qwen.middle)
            prefix, _, suffix = inner.partition(qwen.suffix)
            text = middles.get((prefix, suffix), "    return None\n") + "<|endoftext|>\n    raise SystemExit\n"
            self.send_json(self.completion(text, completion_tokens=5))

    return Handler


def test_a_served_model_needs_the_option_and_gets_that_layout(pytester: pytest.Pytester, infill_env: Path,
                                                               records: dict[str, list[dict[str, Any]]]) -> None:
    """A server's tokenizer is not visible here: without --codeeval-fim the run stops with one
    line; with it, /v1/completions gets the family's layout and its end texts as stops, and the
    answer is cut at the end text (the junk after it would fail every program)."""
    chosen = [r for r in records["humaneval-infill-span-light"] if _in_slice(r) or "HumanEval/0/" in r["task_id"]]
    prompts: list[dict[str, Any]] = []
    handler = _fim_handler({(r["prompt"], r["suffix"]): r["canonical_solution"] for r in chosen}, prompts)
    with serving(handler) as url:
        args = ["benchmarks/humaneval-infill-span-light", "-k", "HumanEval_0_ or HumanEval_32_",
                f"--codeeval-model={url}", "--codeeval-json=r.json"]
        refused = pytester.runpytest_subprocess(*args)
        assert refused.ret == pytest.ExitCode.USAGE_ERROR
        refused.stdout.fnmatch_lines(["*humaneval-infill-span-light needs fill-in-the-middle prompts, and for * a served "
                                      "model's tokenizer cannot be read here: name its family with --codeeval-fim=*"])
        assert prompts == []
        result = pytester.runpytest_subprocess(*args, "--codeeval-fim=qwen")
        assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
        result.assert_outcomes(passed=len(chosen))
        qwen = fim.FAMILIES["qwen"]
        assert sorted(p["prompt"] for p in prompts) == sorted(qwen.prompt(r["prompt"], r["suffix"]) for r in chosen)
        assert all(p["stop"] == list(qwen.ends) for p in prompts)
