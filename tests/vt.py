"""A small VT100 screen for tests: what a terminal would show after some output.

It knows what the progress display and pytest send: printable text (with the right margin's
pending wrap), CR, LF (taken as CR LF, as a tty's output processing makes it), BS, ESC 7 / ESC 8 (cursor save / restore), CSI A B C D G H K J, and it
ignores SGR colours and OSC sequences. Lines scrolled off the top are kept, so
:meth:`Terminal.text` is the whole session as a screenshot would read it.
"""

from __future__ import annotations

import re

_CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z@])")
_OSC = re.compile(r"\x1b\].*?(?:\x07|\x1b\\)", re.S)


class Terminal:
    def __init__(self, columns: int = 100, rows: int = 30) -> None:
        self.columns, self.rows = columns, rows
        self.screen = [[" "] * columns for _ in range(rows)]
        self.history: list[str] = []
        self.x = self.y = 0
        self.pending_wrap = False
        self.saved = (0, 0)

    def feed(self, data: str) -> Terminal:
        data = _OSC.sub("", data)
        i = 0
        while i < len(data):
            c = data[i]
            if c == "\x1b":
                m = _CSI.match(data, i)
                if m:
                    self._csi(m.group(1), m.group(2))
                    i = m.end()
                    continue
                following = data[i + 1:i + 2]
                if following == "7":
                    self.saved = (self.x, self.y)
                elif following == "8":
                    self.x, self.y = self.saved
                    self.pending_wrap = False
                i += 2
                continue
            if c == "\r":
                self.x, self.pending_wrap = 0, False
            elif c == "\n":  # as a terminal's output processing does it (onlcr): LF is CR LF
                self.x = 0
                self._down()
            elif c == "\b":
                self.x, self.pending_wrap = max(0, self.x - 1), False
            elif c >= " ":
                if self.pending_wrap:
                    self.x, self.pending_wrap = 0, False
                    self._down()
                self.screen[self.y][self.x] = c
                if self.x == self.columns - 1:
                    self.pending_wrap = True
                else:
                    self.x += 1
            i += 1
        return self

    def _down(self) -> None:
        self.pending_wrap = False
        if self.y == self.rows - 1:
            self.history.append("".join(self.screen.pop(0)).rstrip())
            self.screen.append([" "] * self.columns)
        else:
            self.y += 1

    def _csi(self, params: str, op: str) -> None:
        numbers = [int(p) if p.isdigit() else 0 for p in params.replace("?", "").split(";")] if params else []
        n = numbers[0] if numbers and numbers[0] else 1
        self.pending_wrap = op in "m" and self.pending_wrap
        if op == "A":
            self.y = max(0, self.y - n)
        elif op == "B":
            self.y = min(self.rows - 1, self.y + n)
        elif op == "C":
            self.x = min(self.columns - 1, self.x + n)
        elif op == "D":
            self.x = max(0, self.x - n)
        elif op == "G":
            self.x = min(self.columns - 1, n - 1)
        elif op == "H":
            self.y = min(self.rows - 1, (numbers[0] if numbers and numbers[0] else 1) - 1)
            self.x = min(self.columns - 1, (numbers[1] if len(numbers) > 1 and numbers[1] else 1) - 1)
        elif op == "K":
            mode = numbers[0] if numbers else 0
            row = self.screen[self.y]
            span = range(self.x, self.columns) if mode == 0 else range(0, self.x + 1) if mode == 1 else range(self.columns)
            for x in span:
                row[x] = " "
        elif op == "J":
            mode = numbers[0] if numbers else 0
            if mode == 0:
                self._csi("0", "K")
                for y in range(self.y + 1, self.rows):
                    self.screen[y] = [" "] * self.columns
            elif mode == 2:
                self.screen = [[" "] * self.columns for _ in range(self.rows)]

    def lines(self) -> list[str]:
        """Every line of the session, scrolled-off ones first, trailing blank lines dropped."""
        out = self.history + ["".join(row).rstrip() for row in self.screen]
        while out and not out[-1]:
            out.pop()
        return out

    def text(self) -> str:
        return "\n".join(self.lines())
