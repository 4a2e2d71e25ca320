"""What a model is asked for a problem, and how its output becomes a runnable program.

Three modes:

* ``base``: the benchmark prompt exactly as bigcode-evaluation-harness builds it (an optional
  ``--codeeval-prefix`` in front), stopped at the benchmark's stop sequences; the program is the
  prompt (without the prefix) followed by the completion.
* ``chat``: the tokenizer's chat template over one user message, the problem's instruction
  (evalplus's wording, the prompt in a code fence); the stop is the end of the model's turn. The
  code is pulled out of the reply (``<think>`` sections dropped, the fenced block that defines the
  function preferred) and made runnable: a reply that re-declares the function runs after the
  prompt (so the prompt's imports and helper functions exist), a reply that gives only the body
  is indented under the prompt's signature.
* ``fim``: infilling problems (a ``suffix`` after the hole), whatever the model: prefix and
  suffix in the family's fill-in-the-middle tokens (:mod:`~pytest_codeeval.generation.fim`,
  ``--codeeval-prefix`` in front of the code prefix, after the first marker); the generated text
  is the middle, and the program is prefix + middle + suffix.

Whether ``auto`` picks chat: see :func:`choose_mode`. Knows nothing of pytest or torch.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from typing import Any

from pytest_codeeval.generation.fim import FimFormat
from pytest_codeeval.problem import Problem

BASE, CHAT, FIM = "base", "chat", "fim"
# names of instruction-tuned checkpoints; a chat template alone proves nothing (many base
# checkpoints, e.g. Qwen2.5-Coder-7B, ship one)
_INSTRUCT_NAME = re.compile(r"(instruct|chat|[-_]it\b|[-_]sft\b|assistant)", re.IGNORECASE)
_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL)
_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[ \t]*\n(.*?)(?:```|$)", re.DOTALL)


@dataclass(frozen=True)
class ModeChoice:
    mode: str
    why: str
    by_name: bool = False  # auto decided by the model's name: it may be wrong, say how to force it

    def describe(self) -> str:
        """``chat prompts (auto: ...; --codeeval-chat=off for base prompts)``"""
        hint = ""
        if self.by_name:
            hint = ("; --codeeval-chat=off for base prompts" if self.mode == CHAT
                    else "; --codeeval-chat=on if it is instruction-tuned")
        return f"{self.mode} prompts ({self.why}{hint})"


def choose_mode(requested: str, model_name: str, tokenizer: Any) -> ModeChoice:
    """``--codeeval-chat``: ``on``/``off`` force it; ``auto`` picks chat when the tokenizer has a
    chat template *and* the checkpoint's name says it is instruction-tuned."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if requested == "on":
        if not has_template:
            raise ValueError("--codeeval-chat=on: the tokenizer has no chat template")
        return ModeChoice(CHAT, "--codeeval-chat=on")
    if requested == "off":
        return ModeChoice(BASE, "--codeeval-chat=off")
    if has_template and _INSTRUCT_NAME.search(model_name):
        return ModeChoice(CHAT, "auto: a chat template and an instruction-tuned name", by_name=True)
    if has_template:
        return ModeChoice(BASE, "auto: a chat template, but the name does not say instruct/chat", by_name=True)
    return ModeChoice(BASE, "auto: no chat template")


def choose_served_mode(requested: str, served_name: str) -> ModeChoice:
    """:func:`choose_mode` for a model behind an OpenAI-compatible endpoint: the server applies
    its own chat template, which the client cannot see, so ``auto`` goes by the name alone."""
    if requested == "on":
        return ModeChoice(CHAT, "--codeeval-chat=on")
    if requested == "off":
        return ModeChoice(BASE, "--codeeval-chat=off")
    if _INSTRUCT_NAME.search(served_name):
        return ModeChoice(CHAT, "auto: the served model's name says it is instruction-tuned", by_name=True)
    return ModeChoice(BASE, "auto: the served model's name does not say instruct/chat", by_name=True)


def chat_message(problem: Problem, prefix: str = "") -> str:
    """The one user message of chat mode: the problem's instruction (``--codeeval-prefix`` first)."""
    return prefix + problem.instruction


def prompt_text(problem: Problem, mode: str, tokenizer: Any, prefix: str = "",
                fim: FimFormat | None = None) -> str:
    """The exact text the model continues (``fim``: the family's layout, for mode FIM)."""
    if mode == FIM:
        assert fim is not None and problem.suffix is not None
        return fim.prompt(prefix + problem.program_prefix, problem.suffix)
    if mode == BASE:
        return prefix + problem.prompt
    messages = [{"role": "user", "content": chat_message(problem, prefix)}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def stops(problem: Problem, mode: str, fim: FimFormat | None = None) -> tuple[str, ...]:
    """String stops checked on the generated text (the end-of-sequence token always stops); a
    middle ends at its family's end token, should it come back as text."""
    if mode == FIM:
        return fim.ends if fim is not None else ()
    return problem.stop if mode == BASE else ()


def to_program(problem: Problem, mode: str, text: str) -> str:
    """The program judged for one generated text."""
    if mode == FIM:  # the text is the middle
        return problem.program_from_completion(text)
    if mode == BASE:
        # the prompt the model continued, the way bigcode builds it (the prefix is not code)
        return (problem.prompt if problem.program_prefix else "") + text
    return program_from_reply(problem, text)


# -- chat replies -----------------------------------------------------------------------------
def extract_code(reply: str, entry_point: str = "") -> str:
    """The code in a chat reply: ``<think>`` dropped, then the fenced block defining
    ``entry_point`` (else the longest fenced block), else the whole reply."""
    reply = _THINK.sub("", reply)
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(reply)]
    blocks = [(lang, body) for lang, body in blocks if lang in ("", "python", "py", "python3")] or blocks
    if not blocks:
        return reply.strip("\n")
    defining = [body for _, body in blocks if entry_point and _defines(body, entry_point)]
    chosen = defining[-1] if defining else max((body for _, body in blocks), key=len)
    return chosen.strip("\n")


def program_from_reply(problem: Problem, reply: str) -> str:
    code = _drop_main_guard(extract_code(reply, problem.entry_point))
    head = problem.prompt.rstrip()
    if problem.entry_point and _defines(code, problem.entry_point):
        # The prompt first: its imports and helper functions (HumanEval/10, /38, /50 call them)
        # exist, and the reply's definition replaces the prompt's stub.
        return f"{head}\n\n{code}\n"
    if _is_body(code):
        return f"{head}\n{textwrap.indent(textwrap.dedent(code), '    ')}\n"
    return f"{head}\n\n{code}\n"  # judged as it is: fails honestly if it defines nothing usable


def _defines(code: str, name: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return re.search(rf"^def\s+{re.escape(name)}\s*\(", code, re.MULTILINE) is not None
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == name for n in tree.body)


def _is_body(code: str) -> bool:
    """Only a function body: indented, or a ``return`` that cannot stand at module level."""
    first = next((line for line in code.splitlines() if line.strip()), "")
    if first[:1] in (" ", "\t"):
        return True
    try:
        compile(code, "<reply>", "exec", dont_inherit=True)  # the compiler, not the parser, rejects it
    except SyntaxError as e:
        return "outside function" in str(e)
    return False


def _drop_main_guard(code: str) -> str:
    """Remove ``if __name__ == "__main__":`` blocks: their demos and input() calls are not the
    function under test and would only cost time."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    lines = code.splitlines()
    for node in reversed(tree.body):
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test):
            del lines[node.lineno - 1 : node.end_lineno]
    return "\n".join(lines).rstrip()
