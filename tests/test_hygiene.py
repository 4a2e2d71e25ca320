"""What users see of the plugin outside its results: ``pytest --help`` and the debug log."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pytest_codeeval import settings
from tests.conftest import humaneval_ids, write_counts

# what --log-level=DEBUG shows of a replay run, by logger
DEBUG_LINES = {
    "pytest_codeeval.benchmarks": re.compile(r"benchmark humaneval: 164 problems from \S+HumanEval\.jsonl\.gz in "
                                             r"\d+\.\d\d s"),
    "pytest_codeeval.generation.replay": re.compile(r"generations file \S+samples\.jsonl: humaneval: 3 problems, "
                                                    r"30 samples \(10 per problem\)"),
    "pytest_codeeval.sandbox.client": re.compile(r"sandbox server started: pid \d+, \d+ worker slot\(s\), isolation "
                                                 r"auto asked, directory \S+"),
}


def help_lines(pytester: pytest.Pytester) -> dict[str, str]:
    """``pytest --help``'s invocation column of every --codeeval-* option: flag -> that text."""
    result = pytester.runpytest("--help")
    assert result.ret == 0
    out = {}
    for line in result.stdout.lines:
        m = re.match(r"^  (--codeeval-[a-z0-9-]+)(\S*)", line)
        if m:
            out[m[1]] = m[1] + m[2]
    return out


def test_help_shows_switches_bare_and_values_with_their_metavar(pytester: pytest.Pytester) -> None:
    shown = help_lines(pytester)
    assert set(shown) == {opt.flag for opt in settings.OPTIONS}
    switches = {opt.flag for opt in settings.OPTIONS if opt.switch}
    assert switches >= {"--codeeval-load-in-8bit", "--codeeval-load-in-4bit", "--codeeval-trust-remote-code",
                        "--codeeval-regenerate", "--codeeval-baseline-force"}
    for opt in settings.OPTIONS:
        if opt.switch:
            assert shown[opt.flag] == opt.flag, shown[opt.flag]  # no "=[CODEEVAL_REGENERATE]"
        else:
            assert opt.metavar and opt.metavar.upper() != opt.dest.upper(), opt.flag
            value = f"[{opt.metavar}]" if opt.const is not None else opt.metavar
            assert shown[opt.flag] == f"{opt.flag}={value}"
    assert shown["--codeeval-n"] == "--codeeval-n=N"
    assert shown["--codeeval-model"] == "--codeeval-model=MODEL"
    assert shown["--codeeval-precision"] == "--codeeval-precision=auto|fp32|fp16|bf16"
    assert shown["--codeeval-chat"] == "--codeeval-chat=[auto|on|off]"  # a value that may be left out


def test_a_switch_leaves_the_next_argument_alone(pytester: pytest.Pytester) -> None:
    """A switch once took an optional value and swallowed the path after it:
    ``pytest --codeeval-baseline-force benchmarks/x`` was "expected true or false"."""
    pytester.makepyfile(test_x="def test_x(): pass")
    config = pytester.parseconfig("--codeeval-regenerate", "test_x.py", "--codeeval-baseline-force")
    assert config.getoption("codeeval_regenerate") == "true" and config.getoption("codeeval_baseline_force") == "true"
    assert config.args == ["test_x.py"]
    assert settings.resolve(config).regenerate is True
    # the ini twin still takes a value
    pytester.makeini("[pytest]\ncodeeval_regenerate = false\n")
    assert settings.resolve(pytester.parseconfig("test_x.py")).regenerate is False


def test_debug_log_says_what_was_loaded_and_started(pytester: pytest.Pytester, bench_dir: Path,
                                                    humaneval_records: list[dict[str, Any]]) -> None:
    write_counts(pytester.path / "samples.jsonl", humaneval_records, [10, 3, 0])
    args = [*humaneval_ids(3), "--codeeval-generations=samples.jsonl", "-p", "no:cacheprovider"]
    result = pytester.runpytest(*args, "-o", "log_cli=true", "--log-cli-level=DEBUG")
    text = "\n".join(result.stdout.lines)
    for logger, line in DEBUG_LINES.items():
        assert line.search(text), f"{logger}: no line like {line.pattern!r}"
        assert re.search(rf"DEBUG\s+{re.escape(logger)}:", text), logger
    assert re.search(r"sandbox server pid \d+ ready: \{", text)
    # at the default levels the plugin adds nothing to the output: not even with log_cli on
    quiet = pytester.runpytest(*args, "-o", "log_cli=true")
    assert not any(line.search("\n".join(quiet.stdout.lines)) for line in DEBUG_LINES.values())
    assert not re.search(r"(DEBUG|INFO|WARNING|ERROR)\s+pytest_codeeval", "\n".join(quiet.stdout.lines + quiet.stderr.lines))


def test_debug_log_says_which_model_was_loaded(pytester: pytest.Pytester, bench_dir: Path, tmp_path: Path,
                                               humaneval_records: list[dict[str, Any]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch", reason="a local model needs the hf extra")
    pytest.importorskip("transformers", reason="a local model needs the hf extra")
    from tests import tiny_models

    checkpoint = tiny_models.build(tmp_path / "tiny-base", [r["prompt"] + r["canonical_solution"]
                                                            for r in humaneval_records[:20]])
    monkeypatch.setenv("CODEEVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # in a process of its own: an in-process run would drop the torch modules it imported first,
    # and torch cannot import them twice (later tests would fail)
    result = pytester.runpytest_subprocess(*humaneval_ids(2), f"--codeeval-model={checkpoint}",
                                           "--codeeval-max-new-tokens=4", "-p", "no:cacheprovider",
                                           "-o", "log_cli=true", "--log-cli-level=DEBUG")
    text = "\n".join(result.stdout.lines)
    assert re.search(rf"DEBUG\s+pytest_codeeval\.generation\.model:.*loading model {re.escape(str(checkpoint))} "
                     r"\(revision None, adapter None, quantization None\) on cpu as torch\.float32", text), text[-3000:]
    assert re.search(rf"model {re.escape(str(checkpoint))} loaded: LlamaForCausalLM, \d+ parameters, on cpu", text)
