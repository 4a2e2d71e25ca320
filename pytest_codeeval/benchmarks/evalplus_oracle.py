# SPDX-License-Identifier: MIT AND Apache-2.0
# Portions of this file are derived from EvalPlus 0.3.1 (https://github.com/evalplus/evalplus),
# licensed under the Apache License, Version 2.0 (LICENSES/evalplus-Apache-2.0.txt): the task
# lists and oracles of evalplus/eval/_special_oracle.py, mbpp_deserialize_inputs of
# evalplus/data/mbpp.py, and the output comparison of evalplus/eval/__init__.py. The parts from
# evalplus/eval/ are also under the MIT License of OpenAI's human-eval, Copyright (c) OpenAI
# (LICENSES/human-eval-MIT.txt). Modified for pytest-codeeval: rewritten on the standard library
# alone, run as source text in the sandbox, restructured and renamed. See NOTICE.
"""EvalPlus's input conversions and output comparison, ported from evalplus 0.3.1.

Two consumers: the ground-truth worker imports :func:`mbpp_deserialize_inputs`; the check stages
of HumanEval+/MBPP+ embed :data:`CHECK_SOURCE` (this comparison, as source text) because they run
inside the sample's process after the program. Standard library only: importing numpy in every
sample would cost more than the checks, so ``np.allclose`` is reimplemented for the values
these datasets hold (numbers and nested lists/tuples of numbers).
"""

from __future__ import annotations

from typing import Any

# evalplus/eval/_special_oracle.py
MBPP_OUTPUT_NOT_NONE_TASKS = ["check_str", "text_match_three", "text_starta_endb"]
MBPP_OUTPUT_SET_EQ_TASKS = [
    "similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
    "larg_nnum", "intersection_array", "find_dissimilar", "Diff",
]

_TUPLE_LISTS = {2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596,
                616, 630, 726, 740, 744, 809}
_NESTED_TUPLE_LISTS = {63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780}
_FIRST_ARG_TUPLE_LIST = {75, 413, 444, 753}
_FIRST_ARG_TUPLE = {250, 405, 446, 617, 720, 763, 808}
_NESTED_THEN_TUPLE = {259, 401, 445}
_ALL_TUPLES = {580, 615, 791}


def mbpp_deserialize_inputs(task_id: str, inputs: list[Any]) -> list[Any]:
    """MBPP+ stores tuples, sets and complex numbers as JSON lists and strings: restore them
    (evalplus/data/mbpp.py, ``mbpp_deserialize_inputs``, same cases and quirks)."""
    n = int(task_id.split("/")[-1])
    if n in _TUPLE_LISTS:
        return [[tuple(x) for x in inp] for inp in inputs]
    if n in _NESTED_TUPLE_LISTS:
        return [[[tuple(x) for x in xs] for xs in inp] for inp in inputs]
    if n in _FIRST_ARG_TUPLE_LIST:
        return [[[tuple(x) for x in inp[0]]] + [inp[1]] for inp in inputs]
    if n in (106, 750):
        return [[inp[0]] + [tuple(inp[1])] for inp in inputs]
    if n == 115:  # evalplus turns empty members into {} (an empty dict): kept as it is
        return [[[set(x) if isinstance(x, list) and len(x) else {} for x in inp[0]]] for inp in inputs]
    if n == 124:
        return [(float(inp[0]), complex(inp[1])) for inp in inputs]
    if n in _FIRST_ARG_TUPLE:
        return [[tuple(inp[0])] + [inp[1]] for inp in inputs]
    if n in _NESTED_THEN_TUPLE:
        nested = [[[tuple(x) for x in xs] for xs in inp] for inp in inputs]
        return [[tuple(x) for x in inp] for inp in nested]
    if n == 278:
        nested = [[[tuple(x) if isinstance(x, list) else x for x in inp[0]]] for inp in inputs]
        return [[tuple(x) for x in inp] for inp in nested]
    if n == 307:
        return [[tuple(inp[0])] + [inp[1], inp[2]] for inp in inputs]
    if n == 722:
        return [[{k: tuple(v) for k, v in inp[0].items()}] + inp[1:] for inp in inputs]
    if n == 252:
        return [[complex(inp[0])] for inp in inputs]
    if n in _ALL_TUPLES:
        def as_tuples(x: Any) -> Any:
            return tuple(as_tuples(i) for i in x) if isinstance(x, list) else x

        return [as_tuples(inp) for inp in inputs]
    return inputs


# The comparison, as it runs in the sample. Names start with __codeeval_ so that they cannot
# clash with the program's. ``__codeeval_data__`` is {"base": (inputs, expected), "plus": ...}.
CHECK_SOURCE = r'''
def __codeeval_check__(level, dataset, entry_point, atol, set_eq_tasks, not_none_tasks):
    import math

    def poly(xs, x):
        return sum(c * math.pow(x, i) for i, c in enumerate(xs))

    def surface_area(base_edge, height):
        slant = math.sqrt((base_edge / 2) ** 2 + height ** 2)
        return round(base_edge ** 2 + 4 * (base_edge * slant) / 2)

    def digit_distance(a, b):
        a, b = str(a), str(b)
        width = max(len(a), len(b))
        return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width)))

    def is_floats(x):
        if isinstance(x, float):
            return True
        if isinstance(x, (list, tuple)) and x:
            return all(isinstance(i, float) for i in x)
        return False

    def close(a, b, rtol, atol):  # np.allclose for numbers and nested sequences of numbers
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))) or len(a) != len(b):
                return False
            return all(close(x, y, rtol, atol) for x, y in zip(a, b))
        try:
            return a == b or abs(a - b) <= atol + rtol * abs(b)
        except TypeError:
            return False

    def short(x):  # repr, bounded: str() of a huge int is quadratic
        if isinstance(x, int) and x.bit_length() > 2000:
            return f"<int of {x.bit_length()} bits>"
        text = repr(x)
        return text if len(text) <= 200 else text[:200] + "..."

    def describe(i, inp, out, exp, what="expected"):
        args = ", ".join(short(a) for a in inp)
        return f"{level} input #{i}: {entry_point}({args[:300]}) returned {short(out)}, {what} {short(exp)}"

    fn = globals().get(entry_point)
    assert callable(fn), f"the program defines no function {entry_point}()"
    inputs, expected = __codeeval_data__[level]
    # the judge calls the program in batches (in order; an exception is raised where it is
    # reached); in a process of its own the checks would call fn(*inp) one input at a time
    results = __codeeval_results__(fn, inputs) if "__codeeval_results__" in globals() else (fn(*x) for x in inputs)
    for i, ((inp, exp), out) in enumerate(zip(zip(inputs, expected), results)):
        exact = out == exp
        if dataset == "mbpp":
            if entry_point == "are_equivalent":
                exact = True
            elif entry_point == "sum_div":
                exact = exact or out == 0
            elif entry_point == "surface_Area":
                exact = exact or abs(out - surface_area(*inp)) <= atol
            elif entry_point == "digit_distance_nums":
                exact = exact or out == digit_distance(*inp)
            elif entry_point in set_eq_tasks:
                exact = set(out) == set(exp)
            elif entry_point in not_none_tasks:
                exact = out == exp if isinstance(out, bool) else exp == (out is not None)
        if dataset == "humaneval" and entry_point == "find_zero":
            assert abs(poly(*inp, out)) <= atol, describe(i, inp, out, "a zero of the polynomial", "not")
            continue
        if atol == 0 and is_floats(exp):
            atol = 1e-6  # evalplus keeps this tolerance for the rest of the inputs too
        # messages are built only on failure (assert evaluates them lazily)
        if not exact and atol != 0:
            assert type(out) == type(exp), describe(i, inp, out, exp)
            if isinstance(exp, (list, tuple)):
                assert len(out) == len(exp), describe(i, inp, out, exp)
            assert close(out, exp, 1e-07, atol), describe(i, inp, out, exp)
        else:
            assert exact, describe(i, inp, out, exp)
'''


def check_stage(level: str, dataset: str, entry_point: str, atol: float) -> str:
    """The source of one check stage ("base" or "plus") of a HumanEval+/MBPP+ problem."""
    return CHECK_SOURCE + (
        f"\n__codeeval_check__({level!r}, {dataset!r}, {entry_point!r}, {float(atol)!r}, "
        f"{MBPP_OUTPUT_SET_EQ_TASKS!r}, {MBPP_OUTPUT_NOT_NONE_TASKS!r})\n"
    )
