"""Text tables and styled lines for ``polaronflow analyze``, without rich.

``analyze`` is the command users run after every job and in loops over campaigns; importing
rich and rendering its tables cost 30-45 ms of the ~0.3 s the whole command takes on the
257-atom run (benchmarks/RESULTS.md), more than the projected-DOS read. This module draws the
same heavy-header box tables from the standard library only. The other commands keep rich
(progress bars, markup), where start-up does not matter.

On a terminal, a table wider than the window has its cells wrapped (between words where the
longest words fit, as rich folds them) so that its rows take as few lines as possible; a
table with too many columns for the window even at 4 characters each is printed as one block
of "column  value" lines per row. Titles, headers and labels are styled there, unless
``NO_COLOR`` is set (https://no-color.org). Redirected output (files, pipes, CI logs) is
never wrapped, one table row per line whatever its width, so that it can be searched and
diffed, and never styled.

Cell texts are printed as they are: no markup is interpreted (a ``[1]`` in a note stays).
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Sequence
from typing import TextIO

BOLD, DIM, RED, BOLD_RED = "1", "2", "31", "1;31"
#: The narrowest a column is cut to on a terminal (narrower is unreadable).
NARROWEST = 4


def _frame(ncols: int) -> int:
    """Columns the borders and padding of a table take: "│ " + " │" per column, shared."""
    return 3 * ncols + 1


def cell_width(text: str) -> int:
    """Terminal columns of ``text``: East-Asian wide characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    n = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        n += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return n


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` columns, broken at spaces where possible."""
    if cell_width(text) <= width:
        return [text]
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if cell_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        while cell_width(word) > width:  # a word longer than the column: cut it
            k, used = 0, 0
            while k < len(word) and used + cell_width(word[k]) <= width:
                used += cell_width(word[k])
                k += 1
            k = max(k, 1)
            lines.append(word[:k])
            word = word[k:]
        line = word
    if line or not lines:
        lines.append(line)
    return lines


def _height(cells: Sequence[str], width: int) -> int:
    """Lines the tallest of ``cells`` takes at ``width`` columns."""
    return max(len(_wrap(c, width)) for c in cells)


def _narrowest(cells: Sequence[str], lo: int, hi: int, height: int) -> int:
    """The least width in [lo, hi] at which every cell takes at most ``height`` lines."""
    while lo < hi:  # lines never increase with the width (greedy word wrap)
        mid = (lo + hi) // 2
        if _height(cells, mid) <= height:
            hi = mid
        else:
            lo = mid + 1
    return hi


def _fit(cells: list[list[str]], natural: list[int], floors: list[int], limit: int) -> list[int]:
    """Content widths for a table of at most ``limit`` columns.

    The rows are made as short as they can be: the least number of lines per cell for which
    every column fits, wrapped between words (``floors``: each column's longest word) or,
    when even the longest words do not fit, inside them (down to ``NARROWEST``). The room
    left over then unwraps whole columns, those needing the least first. The caller has
    checked that the natural widths do not fit and that ``NARROWEST`` does.
    """
    frame = _frame(len(natural))
    lower = floors if sum(floors) + frame <= limit else [min(n, NARROWEST) for n in natural]
    height = 2
    while True:
        bounds = zip(cells, lower, natural, strict=True)
        widths = [_narrowest(c, lo, hi, height) for c, lo, hi in bounds]
        if sum(widths) + frame <= limit or widths == lower:
            break  # (``lower`` itself fits: the caller checked)
        height += 1
    spare = limit - frame - sum(widths)
    for i in sorted(range(len(widths)), key=lambda i: natural[i] - widths[i]):
        if 0 < natural[i] - widths[i] <= spare:
            spare -= natural[i] - widths[i]
            widths[i] = natural[i]
    return widths


class Output:
    """Where ``analyze`` prints: a stream, its terminal width and whether to style."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        isatty = getattr(self.stream, "isatty", None)
        self.terminal = bool(isatty and isatty())
        self.color = self.terminal and not os.environ.get("NO_COLOR")
        self.width: int | None = None
        if self.terminal:
            import shutil

            self.width = shutil.get_terminal_size().columns

    def style(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and text else text

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")

    def labelled(self, label: str, text: str, code: str, indent: int = 2) -> None:
        """``label`` (styled with ``code``) and ``text`` on one line; on a terminal narrower
        than that, ``text`` wraps at its words with the continuation lines indented."""
        lead = " " * indent + label + " "
        if self.width is None or cell_width(lead + text) <= self.width:
            lines = [text]
        else:
            lines = _wrap(text, max(20, self.width - cell_width(lead)))
        first = " " * indent + self.style(label, code) + " " + lines[0]
        pad = " " * cell_width(lead)
        self.stream.write("\n".join([first, *(pad + rest for rest in lines[1:])]) + "\n")

    def table(
        self,
        title: str,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        title_style: str = BOLD,
    ) -> None:
        """A box table: heavy lines around the header, light ones around the body."""
        cells = [[c, *(row[i] for row in rows)] for i, c in enumerate(columns)]
        natural = [max(map(cell_width, col)) for col in cells]
        widths = natural
        frame = _frame(len(natural))
        if self.width is not None and sum(natural) + frame > self.width:
            if sum(min(n, NARROWEST) for n in natural) + frame > self.width:
                # Too many columns for this terminal even at 4 characters each: one block
                # of "column  value" lines per row instead of an unreadable grid.
                self._records(title, columns, rows, title_style)
                return
            floors = [max(cell_width(w) for c in col for w in c.split(" ")) for col in cells]
            widths = _fit(cells, natural, floors, self.width)

        def pad(text: str, width: int) -> str:
            return text + " " * (width - cell_width(text))

        def rule(left: str, fill: str, mid: str, right: str) -> str:
            return left + mid.join(fill * (w + 2) for w in widths) + right

        def body(cells: Sequence[str], edge: str, code: str | None) -> list[str]:
            wrapped = [_wrap(c, w) for c, w in zip(cells, widths, strict=True)]
            out = []
            for k in range(max(len(w) for w in wrapped)):
                parts = []
                for lines, w in zip(wrapped, widths, strict=True):
                    text = pad(lines[k] if k < len(lines) else "", w)
                    parts.append(f" {self.style(text, code) if code else text} ")
                out.append(edge + edge.join(parts) + edge)
            return out

        total = sum(widths) + frame
        if title:
            for text in _wrap(title, total) if self.width is not None else [title]:
                gap = max(0, total - cell_width(text))
                self.line(" " * (gap // 2) + self.style(text, title_style))
        lines = [rule("┏", "━", "┳", "┓")]
        lines += body(columns, "┃", BOLD)
        lines.append(rule("┡", "━", "╇", "┩"))
        for row in rows:
            lines += body(row, "│", None)
        lines.append(rule("└", "─", "┴", "┘"))
        self.stream.write("\n".join(lines) + "\n")

    def _records(
        self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], title_style: str
    ) -> None:
        """The table as one block per row: its first cell, then "column  value" lines."""
        if title:
            self.line(self.style(title, title_style))
        key = max(map(cell_width, columns[1:]), default=0)
        for row in rows:
            self.line()
            self.line(self.style(f"{columns[0]} {row[0]}" if columns else "", BOLD))
            for name, value in zip(columns[1:], row[1:], strict=True):
                label = name + " " * (key - cell_width(name))
                self.labelled(label, value, DIM)
