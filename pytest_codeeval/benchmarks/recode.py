"""ReCode (Wang et al. 2022, arXiv 2212.10264): HumanEval and MBPP under perturbations of the
docstring, the function name, the code's syntax and its format.

Data: ReCode's released sets, ``<data>/recode/dataset-release/`` (amazon-science/recode's
``dataset-release/`` folder as it is: ``nominal/`` and ``perturbed_finalized/<ds>/full/<category>/``).

Every (perturbation, problem) pair is one item, and so is every problem's unperturbed prompt, in
each of the two nominal forms ReCode compares against: the full prompt (``nominal``, the baseline
of the docstring and function-name categories) and the half-written function
(``nominal_partial``, the baseline of syntax and format). Task ids say what an item is:

    nominal/HumanEval/0                      nominal_partial/HumanEval/0
    func_name/FuncRenameCamelCase/s0/HumanEval/0
    <category>/<transformation>/s<seed>/<ReCode's task id>

so ``-k func_name``, ``-k FuncRenameCamelCase``, ``-k nominal`` or ``-k HumanEval_0`` select what
they name (the pytest id is the task id with "_" for "/"). Categories use ReCode's folder names:
``nlaugmenter`` (docstring), ``func_name`` (function name), ``natgen`` (syntax), ``format``.

Seeds, after ReCode's ``config.json``: randomized transformations (★ in the data README) at
s0..s(S-1), with S = 5 for HumanEval and S = 1 for MBPP (the seeds the data directory holds);
the others at s0 only. Prompt, stops and program layout are bigcode-evaluation-harness's
``perturbed-humaneval`` task's (the prompt stripped, HumanEval's stops); the checks are the
record's ``test`` and ``check(<entry_point>)``, the entry point being the perturbed name.

The reference program is the record's prompt + ``canonical_solution``; under a function rename
the solution's own calls of the old name are renamed too (recursive solutions). The release's
own defects (unclosed docstrings, natgen remainders dedented, tab_indent prompts that space
indented solutions cannot continue) make some references fail: ``tests/data/recode_known_failures.json``.
ReCode's metrics over these items: :mod:`pytest_codeeval.robustness`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pytest_codeeval.benchmarks import (
    Benchmark,
    BenchmarkError,
    BenchmarkSpec,
    DataUnavailable,
    LoadOptions,
    read_jsonl,
    register,
)
from pytest_codeeval.problem import Problem
from pytest_codeeval.robustness import NOMINAL, NOMINAL_PARTIAL

# bigcode-evaluation-harness, tasks/recode.py (HumanEval's stops)
STOP = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif")
# ReCode's config.json: category folder -> transformations; True: randomized (seeds s0..s(S-1))
CATEGORIES: dict[str, dict[str, bool]] = {
    "nlaugmenter": {"BackTranslation": False, "ButterFingersPerturbation": True, "ChangeCharCase": True,
                    "EnglishInflectionalVariation": True, "SwapCharactersPerturbation": True,
                    "SynonymInsertion": True, "SynonymSubstitution": True, "TenseTransformationPast": False,
                    "TenseTransformationFuture": False, "WhitespacePerturbation": True},
    "func_name": {"FuncRenameCamelCase": False, "FuncRenameButterFinger": True, "FuncRenameSwapChar": True,
                  "FuncRenameChangeChar": True, "FuncRenameInflectionalVariation": True,
                  "FuncRenameSynonymSub": True},
    "natgen": {"DeadCodeInserter": True, "ForWhileTransformer": False, "OperandSwap": False,
               "VarRenamerCB": False, "VarRenamerNaive": False, "VarRenamerRN": True},
    "format": {"tab_indent": False, "split_lines": False, "doc2comments": False, "new_lines": True,
               "new_line_aftercode": False, "new_line_afterdoc": False},
}


class _Set:
    """One of ReCode's two datasets: file names, timeout, the seeds its headline numbers use."""

    def __init__(self, name: str, folder: str, nominal: str, partial: str, prefix: str, seeds: int,
                 timeout: float) -> None:
        self.name, self.folder, self.nominal, self.partial = name, folder, nominal, partial
        self.prefix, self.seeds, self.timeout = prefix, seeds, timeout


SETS = {
    # HumanEval's default 3 s; MBPP's 10 s as the mbpp benchmark (task 123 takes ~6 s)
    "recode-humaneval": _Set("recode-humaneval", "humaneval", "HumanEval.jsonl", "humaneval_partial.jsonl",
                             "HumanEval/", seeds=5, timeout=3.0),
    "recode-mbpp": _Set("recode-mbpp", "mbpp", "mbpp_wtest.jsonl", "mbpp_partial.jsonl", "MBPP/", seeds=1,
                        timeout=10.0),
}


def task_id(kind: str, base: str, transformation: str = "", seed: int = 0) -> str:
    """``nominal/HumanEval/0`` or ``func_name/FuncRenameCamelCase/s0/HumanEval/0``."""
    if kind in (NOMINAL, NOMINAL_PARTIAL):
        return f"{kind}/{base}"
    return f"{kind}/{transformation}/s{seed}/{base}"


def files(dataset: _Set) -> list[tuple[str, str, int, str]]:
    """(category, transformation, seed, path under ``perturbed_finalized/``), in ReCode's order."""
    out = []
    for category, transformations in CATEGORIES.items():
        for name, randomized in transformations.items():
            for seed in range(dataset.seeds if randomized else 1):
                out.append((category, name, seed, f"{dataset.folder}/full/{category}/{dataset.folder}_{name}_s{seed}.jsonl"))
    return out


def _root(data_dir: Path | None) -> Path:
    root = (data_dir / "recode" / "dataset-release") if data_dir is not None else None
    if root is None or not (root / "nominal").is_dir():
        where = root if root is not None else Path("<DIR>/recode/dataset-release")
        raise DataUnavailable(
            f"ReCode data not found: put amazon-science/recode's dataset-release/ folder in {where}"
            + ("" if data_dir else " and pass --codeeval-data=<DIR> (or set CODEEVAL_DATA)"))
    return root


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataUnavailable(f"ReCode data incomplete: {path} is missing (from amazon-science/recode's "
                              "dataset-release/ at 66885222)")
    return read_jsonl(path)


def _renamed(solution: str, old: str, new: str) -> str:
    """The solution with its own calls of the function's old name renamed (a recursive solution
    calls itself by name; ReCode's rename changes the prompt and entry point only)."""
    if not old or old == new:
        return solution
    return re.sub(rf"\b{re.escape(old)}\b", new, solution)


def load_set(dataset: _Set, data_dir: Path | None) -> Benchmark:
    root = _root(data_dir)
    problems: list[Problem] = []

    def add(tid: str, record: dict[str, Any], where: str, solution: str | None = None) -> None:
        try:
            prompt, entry, test = record["prompt"], record["entry_point"], record["test"]
            solution = record["canonical_solution"] if solution is None else solution
        except KeyError as e:
            raise BenchmarkError(f"{where}: record {record.get('task_id')!r} lacks the field {e}") from None
        problems.append(Problem(
            benchmark=dataset.name,
            task_id=tid,
            prompt=prompt.strip(),  # bigcode strips: a trailing newline misplaces the indentation
            tests=f"{test}\n\ncheck({entry})\n",
            entry_point=entry,
            reference=prompt + solution,
            program_prefix=prompt,
            stop=STOP,
            timeout=dataset.timeout,
            index=len(problems),
        ))

    nominal: dict[str, dict[str, Any]] = {}
    for kind, filename in ((NOMINAL, dataset.nominal), (NOMINAL_PARTIAL, dataset.partial)):
        path = root / "nominal" / filename
        for r in _read(path):
            base = str(r.get("task_id", ""))
            if not base.startswith(dataset.prefix):
                raise BenchmarkError(f"{path}: task id {base!r} is not {dataset.prefix}N")
            if kind == NOMINAL:
                nominal[base] = r
            add(task_id(kind, base), r, str(path))
    for category, name, seed, relative in files(dataset):
        path = root / "perturbed_finalized" / relative
        for r in _read(path):
            base = str(r.get("task_id", ""))
            if base not in nominal:
                raise BenchmarkError(f"{path}: task id {base!r} is not in the nominal file")
            solution = None
            if category == "func_name":
                solution = _renamed(str(r.get("canonical_solution", "")), str(nominal[base].get("entry_point", "")),
                                    str(r.get("entry_point", "")))
            add(task_id(category, base, name, seed), r, str(path), solution)
    return Benchmark(dataset.name, tuple(problems), str(root))


def _owns(dataset: _Set) -> Any:
    kinds = {NOMINAL, NOMINAL_PARTIAL, *CATEGORIES}

    def owns(tid: str) -> bool:
        return tid.split("/", 1)[0] in kinds and f"/{dataset.prefix}" in tid
    return owns


def _loader(dataset: _Set) -> Any:
    def load(data_dir: Path | None, options: LoadOptions) -> Benchmark:
        return load_set(dataset, data_dir)
    return load


register(BenchmarkSpec("recode-humaneval", _loader(SETS["recode-humaneval"]), _owns(SETS["recode-humaneval"]),
                       "ReCode's perturbed HumanEval: 88 perturbed sets (s = 5) and 2 nominal, 164 problems each"))
register(BenchmarkSpec("recode-mbpp", _loader(SETS["recode-mbpp"]), _owns(SETS["recode-mbpp"]),
                       "ReCode's perturbed MBPP: 28 perturbed sets (s = 1) and 2 nominal, 974 problems each"))
