"""Reading failure reports in end-to-end runs: each item's section, and the excerpts in it
(:mod:`pytest_codeeval.excerpt`)."""

from __future__ import annotations

import re

Excerpt = tuple[str, str, int, int, str]  # kind, label, line in the header, line marked ">", its text


def report_sections(out: str) -> dict[str, str]:
    """``test_name[item id]`` -> the text of its failure report, from pytest's FAILURES section."""
    # a section ends at the next item's header or the next summary section's (the short test
    # summary repeats each crash message, and on CI pytest prints those messages whole)
    parts = re.split(r"^(?:_{3,} (test_\S+\[\S+\]) _{3,}|={3,} .* ={3,})$", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2) if parts[i] is not None}


def excerpts(section: str) -> list[Excerpt]:
    """The excerpts of one report, in order: ("tests" | "program", the label after the kind
    (``HumanEval/2:base``), the line its header names, the line marked ">", that line's text)."""
    found = []
    for m in re.finditer(r"^---- <(tests|program):([^>\n]+)> line (\d+), [^\n]* ----\n((?:[ >] +\d+ \|[^\n]*\n?)+)",
                         section, flags=re.M):
        marked = [re.match(r"> +(\d+) \| ?(.*)$", x) for x in m.group(4).splitlines() if x.startswith(">")]
        assert len(marked) == 1 and marked[0], m.group(0)
        found.append((m.group(1), m.group(2), int(m.group(3)), int(marked[0].group(1)), marked[0].group(2)))
    return found


def quotes(source: str, line: int, text: str) -> bool:
    """Whether ``text`` is line ``line`` of ``source`` as a report shows it (trailing blanks
    dropped, a long line cut with " ...")."""
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return False
    want = lines[line - 1].rstrip()
    return want == text or (text.endswith(" ...") and want.startswith(text[:-4]))
