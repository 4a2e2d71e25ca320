"""A run served entirely from the generation cache stays light: its cache key is computed from
the tokenizer's files and the chat template rendered with jinja2 (generation/templates.py), never
importing torch or transformers. The key is stable across processes, changes with everything
that changes a sample, and a cached run's verdicts are an uncached run's."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from pytest_codeeval.generation import templates  # noqa: E402
from pytest_codeeval.generation.decoding import Sampling  # noqa: E402
from tests import tiny_models  # noqa: E402
from tests.conftest import REPO  # noqa: E402

MESSAGES = [{"role": "user", "content": "Complete this function:\n```python\ndef f(x: int) -> int:\n```"}]
# templates that use what transformers gives a chat template beyond plain jinja2
TEMPLATES = {
    "chatml": tiny_models.CHATML,
    "specials and loop controls": (
        "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{% continue %}{% endif %}"
        "[{{ m['role'] | upper }}] {{ m['content'] | trim }}{{ eos_token }}\n{% endfor %}"
        "{% if add_generation_prompt %}[ASSISTANT]{% endif %}"),
    "namespace, dict and tojson": (
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}"
        "{{ dict(role=m['role'], text=m['content'], tag='<é>') | tojson }}{% endfor %}#{{ ns.n }}"
        "{% if tools is none and documents is none %} no tools{% endif %}"
        "{%- if add_generation_prompt %}\n  <|assistant|>\n{% endif %}"),
    "generation tag and whitespace control": (
        "{% for m in messages %}\n    {%- generation %}<{{ m['role'] }}>{{ m['content'] }}{% endgeneration -%}\n"
        "    {% if not loop.last %}\n|\n{% endif %}\n{% endfor %}\n{% if add_generation_prompt %}<assistant>{% endif %}"),
}
REFUSING = "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message first') }}{% endif %}"


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory: pytest.TempPathFactory, humaneval_records: list[dict[str, Any]]) -> Path:
    """A tiny chat checkpoint (ChatML template) built offline."""
    texts = [r["prompt"] + r["canonical_solution"] for r in humaneval_records]
    return tiny_models.build(tmp_path_factory.mktemp("models") / "tiny-instruct", texts, chat=True, seed=1)


def _with_template(folder: Path, target: Path, template: str) -> Path:
    shutil.copytree(folder, target)
    (target / templates.CHAT_TEMPLATE_FILE).write_text(template)
    return target


# -- the rendering is transformers' -----------------------------------------------------------
@pytest.mark.parametrize("name", list(TEMPLATES))
def test_chat_template_renders_as_transformers_renders_it(chat_folder: Path, tmp_path: Path, name: str) -> None:
    folder = _with_template(chat_folder, tmp_path / "m", TEMPLATES[name])
    # bos_token is null in the tiny tokenizer's config: give it one in the legacy map, which
    # transformers reads only when the config lists no added_tokens_decoder
    config = json.loads((folder / templates.CONFIG_FILE).read_text())
    config.pop("added_tokens_decoder", None)
    (folder / templates.CONFIG_FILE).write_text(json.dumps(config))
    (folder / templates.SPECIAL_TOKENS_FILE).write_text(json.dumps({"bos_token": {"content": "<|im_start|>"}}))
    ours = templates.read(str(folder))
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    assert ours.special_tokens == theirs.special_tokens_map
    for generation_prompt in (False, True):
        for messages in (MESSAGES, [{"role": "system", "content": "be brief"}, *MESSAGES]):
            expected = theirs.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
            assert ours.apply_chat_template(messages, add_generation_prompt=generation_prompt) == expected


def test_raise_exception_refuses_as_in_transformers(chat_folder: Path, tmp_path: Path) -> None:
    import jinja2

    folder = _with_template(chat_folder, tmp_path / "m", REFUSING)
    with pytest.raises(jinja2.TemplateError, match="a system message first"):
        transformers.AutoTokenizer.from_pretrained(folder).apply_chat_template(MESSAGES, tokenize=False)
    with pytest.raises(jinja2.TemplateError, match="a system message first"):
        templates.read(str(folder)).apply_chat_template(MESSAGES)


def test_the_template_in_the_config_and_named_templates(chat_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(chat_folder, folder)
    (folder / templates.CHAT_TEMPLATE_FILE).unlink(missing_ok=True)
    config = json.loads((folder / templates.CONFIG_FILE).read_text())
    (folder / templates.CONFIG_FILE).write_text(json.dumps({**config, "chat_template": TEMPLATES["chatml"]}))
    theirs = transformers.AutoTokenizer.from_pretrained(folder).apply_chat_template(MESSAGES, tokenize=False)
    assert templates.read(str(folder)).apply_chat_template(MESSAGES) == theirs
    (folder / templates.CHAT_TEMPLATE_DIR).mkdir()
    (folder / templates.CHAT_TEMPLATE_DIR / "tool_use.jinja").write_text("tools")
    (folder / templates.CHAT_TEMPLATE_FILE).write_text(TEMPLATES["specials and loop controls"])
    theirs = transformers.AutoTokenizer.from_pretrained(folder)
    assert isinstance(theirs.chat_template, dict)  # a default and a named one: transformers uses the default
    assert templates.read(str(folder)).chat_template == theirs.chat_template
    assert templates.read(str(folder)).apply_chat_template(MESSAGES) == theirs.apply_chat_template(MESSAGES, tokenize=False)


# -- the key: stable across processes, changed by everything that changes a sample --------------
KEY_SCRIPT = r"""
import json, sys
from pathlib import Path
from pytest_codeeval.benchmarks import load
from pytest_codeeval.generation import lm, model as models
from pytest_codeeval.generation.decoding import Sampling

problems = {p.task_id: p for p in load("humaneval", None).problems}
out = {}
for name, case in json.loads(sys.argv[1]).items():
    source = lm.ModelSource(models.ModelSpec(model=case["model"]),
                            lm.GenerationOptions(n=1, sampling=Sampling(**case["sampling"]), seed=case["seed"],
                                                 prefix=case["prefix"]), Path(sys.argv[2]))
    source.validate()
    problem = problems[case["task"]]
    assert source.plan([problem]) is not None
    out[name] = [source._cache.key, source._prepare(problem).hash]
out["heavy imported"] = sorted(m for m in ("torch", "transformers") if m in sys.modules)
print(json.dumps(out))
"""


def _other(value: Any) -> Any:
    """Another valid value of a sampling setting."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return round(value * 0.9, 4) if value else 0.5


def _keys(cases: dict[str, dict[str, Any]], cache: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", KEY_SCRIPT, json.dumps(cases), str(cache)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_the_key_is_stable_across_processes_and_changes_with_each_input(chat_folder: Path, tmp_path: Path,
                                                                         data_dir: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEEVAL_DATA", str(data_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    other_template = _with_template(chat_folder, tmp_path / "other-template-instruct",
                                    tiny_models.CHATML.replace("assistant\n", "assistant\n\n"))
    other_tokenizer = tmp_path / "other-tokenizer-instruct"
    shutil.copytree(chat_folder, other_tokenizer)
    vocab = json.loads((other_tokenizer / "tokenizer.json").read_text())
    vocab["normalizer"] = {"type": "NFKC"}  # same template and weights, other tokens for some texts
    (other_tokenizer / "tokenizer.json").write_text(json.dumps(vocab))
    same_files = tmp_path / "copy-instruct"  # a byte-identical copy elsewhere: only the path differs
    shutil.copytree(chat_folder, same_files)

    sampling = {"temperature": 0.8, "top_p": 0.95, "top_k": 0, "max_new_tokens": 32}
    base = {"model": str(chat_folder), "task": "HumanEval/0", "prefix": "", "seed": 0,
            "sampling": {**{f.name: getattr(Sampling(), f.name) for f in dataclasses.fields(Sampling)}, **sampling}}
    changes = {
        "template file": {"model": str(other_template)},
        "tokenizer file": {"model": str(other_tokenizer)},
        "path": {"model": str(same_files)},
        "prompt": {"task": "HumanEval/1"},
        "prefix": {"prefix": "# Python\n"},
        "seed": {"seed": 1},
        # every sampling setting, a field added later included
        **{f.name: {"sampling": {**base["sampling"], f.name: _other(base["sampling"][f.name])}}
           for f in dataclasses.fields(Sampling)},
    }
    cases = {"base": base, **{name: {**base, **change} for name, change in changes.items()}}
    first, second = _keys(cases, tmp_path / "cache"), _keys(cases, tmp_path / "cache")
    assert first == second  # two processes: the same key for the same inputs
    assert first["heavy imported"] == []  # reading the key needed neither torch nor transformers
    for name in changes:
        assert first[name] != first["base"], f"the key ignores the {name}"
    # what each change moves: the identity (file name) or the prompt's hash within it
    assert first["prompt"][0] == first["base"][0] and first["prompt"][1] != first["base"][1]
    assert first["prefix"][1] != first["base"][1]  # the prefix is in the text (and the identity)
    assert first["tokenizer file"][1] == first["base"][1] and first["tokenizer file"][0] != first["base"][0]
    assert first["template file"][1] != first["base"][1]  # the rendered text itself differs
    meta = json.loads((tmp_path / "cache" / "generations" / f"{first['base'][0]}.meta.json").read_text())
    assert meta["key"] == templates.KEY_VERSION and meta["tokenizer"] == templates.read(str(chat_folder)).digest


# -- end to end: a fully cached run imports neither, and judges the same ----------------------
PROBE = """
import json, sys

def pytest_sessionfinish(session):
    with open("imported.json", "w") as f:
        json.dump(sorted(m for m in ("torch", "transformers") if m in sys.modules), f)
"""


def test_a_fully_cached_run_imports_neither_torch_nor_transformers(pytester: pytest.Pytester, bench_dir: Path,
                                                                     chat_folder: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # the embedded default's place in the cache holds the tiny chat model (no conversion), so
    # this is the run without --codeeval-model that the issue is about
    cache = tmp_path / "cache"
    shutil.copytree(chat_folder, cache / "models" / "SmolLM2-135M-Instruct")
    monkeypatch.setenv("CODEEVAL_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pytester.makeconftest(PROBE)
    select = [f"benchmarks/humaneval/test_humaneval.py::test_humaneval[HumanEval_{i}]" for i in (0, 53)]
    args = [*select, "--codeeval-n=2", "--codeeval-temperature=0.8", "--codeeval-max-new-tokens=8", "-p",
            "no:cacheprovider"]

    def run(name: str, *extra: str) -> tuple[list[str], dict[str, Any]]:
        result = pytester.runpytest_subprocess(*args, f"--codeeval-json={name}.json", *extra)
        assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()  # noise solves nothing
        imported = json.loads((pytester.path / "imported.json").read_text())
        return imported, json.loads((pytester.path / f"{name}.json").read_text())

    imported, cold = run("cold")
    assert imported == ["torch", "transformers"]  # it generated
    assert cold["config"]["prompt_mode"] == "chat" and cold["config"]["generation"]["samples_generated"] == 4
    imported, warm = run("warm")
    assert imported == []
    assert warm["config"]["generation"]["samples_generated"] == 0
    problems = warm["problems"]["humaneval"]
    assert sorted(problems) == ["HumanEval/0", "HumanEval/53"]
    assert all(p["generation"]["from_cache"] == 2 for p in problems.values())
    imported, fresh = run("regenerated", "--codeeval-regenerate")  # uncached: drawn again, same seeds
    assert imported == ["torch", "transformers"] and fresh["config"]["generation"]["samples_generated"] == 4

    def verdicts(doc: dict[str, Any]) -> dict[str, Any]:
        return {t: (p["n"], p["c"], p["outcomes"]) for t, p in doc["problems"]["humaneval"].items()}

    assert verdicts(warm) == verdicts(cold) == verdicts(fresh)
