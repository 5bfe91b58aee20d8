"""The text tables of ``polaronflow analyze``: on a terminal (pty) and redirected."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from polaronflow.cli._table import Output, cell_width

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

COLUMNS = ["run", "ion: m (μB)", "level↓CBM occ", "note"]
ROWS = [
    ["mg-static", "W17: +0.71 W42: +0.69", "0.812", "all 2 polarons with parallel spins"],
    ["h2-static", "none", "-", "[PARTIAL] kept as written, no markup"],
]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _terminal(width: int, monkeypatch, color: bool = True) -> tuple[Output, _Terminal]:
    if color:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", "1")
    stream = _Terminal()
    out = Output(stream)
    out.width = width
    return out, stream


def _words(lines: list[str]) -> list[str]:
    return " ".join(line.replace("│", " ").replace("┃", " ") for line in lines).split()


def test_redirected_table_is_one_line_per_row_and_unstyled():
    stream = io.StringIO()
    out = Output(stream)
    assert not out.terminal and out.width is None
    out.table("title", COLUMNS, ROWS)
    lines = stream.getvalue().splitlines()
    assert not ANSI.search(stream.getvalue())
    assert lines[0].strip() == "title"
    assert lines[1].startswith("┏") and lines[3].startswith("┡") and lines[-1].startswith("└")
    body = lines[4:-1]
    assert len(body) == len(ROWS)  # never wrapped, whatever the width
    for line, row in zip(body, ROWS, strict=True):
        assert [c.strip() for c in line.strip("│").split("│")] == row
    widths = {cell_width(line) for line in lines[1:]}
    assert len(widths) == 1  # every border and row line is as wide as the others


@pytest.mark.parametrize("width", [40, 60, 90])
def test_terminal_table_fits_the_window_and_keeps_every_word(width, monkeypatch):
    out, stream = _terminal(width, monkeypatch, color=False)
    out.table("polaronflow analyze", COLUMNS, ROWS)
    text = stream.getvalue()
    assert not ANSI.search(text)  # NO_COLOR
    lines = text.splitlines()
    assert max(cell_width(line) for line in lines) <= width
    body = [line for line in lines if line.startswith("│")]
    assert len(body) > len(ROWS)  # some cells were wrapped onto more lines
    if width >= 60:
        # room for the longest words: cells are wrapped between words, never inside one
        assert sorted(_words(body)) == sorted(" ".join(c for row in ROWS for c in row).split())
        header = [line for line in lines if line.startswith("┃")]
        assert sorted(_words(header)) == sorted(" ".join(COLUMNS).split())


def test_terminal_styles_unless_no_color(monkeypatch):
    out, stream = _terminal(200, monkeypatch)
    out.table("SYNTHETIC", COLUMNS, ROWS, title_style="1;31")
    assert "\x1b[1;31mSYNTHETIC\x1b[0m" in stream.getvalue()
    assert "\x1b[1mrun" in stream.getvalue()  # bold header


def test_cell_width_counts_terminal_columns():
    assert cell_width("ΔE (eV)") == 7
    assert cell_width("μB Å ↓") == 6
    assert cell_width("漢字") == 4  # East-Asian wide
    assert cell_width("e\u0301") == 1  # a combining accent takes no column


def _in_pty(cmd: list[str], columns: int, env: dict[str, str]) -> str:
    """Run ``cmd`` with stdin/stdout/stderr on a pseudo-terminal ``columns`` wide."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**env, "COLUMNS": str(columns)}
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0, out.decode(errors="replace")
    return out.decode().replace("\r\n", "\n")


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_analyze_on_a_narrow_terminal_and_redirected(corpus_dir):
    """The command a user types, on a 100-column terminal and into a pipe."""
    run = str(corpus_dir / "FeO_U_relax_custodian")
    cmd = [sys.executable, "-m", "polaronflow", "analyze", run, "--cation", "Fe"]
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    shown = _in_pty(cmd, 100, env)
    # the "reading ..." line on stderr is erased before the report
    assert "reading 1 run folder(s)…\r\x1b[K" in shown
    report = shown.split("\r\x1b[K", 1)[1]
    assert "\x1b[1mpolaronflow analyze\x1b[0m" in report
    plain = ANSI.sub("", report).splitlines()
    assert max(cell_width(line) for line in plain) <= 100
    assert any(line.startswith("┏") for line in plain)
    assert "FeO_U_relax_custodian" in "".join(plain).replace("│", "").replace(" ", "")

    piped = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert not ANSI.search(piped) and "reading" not in piped
    rows = [line for line in piped.splitlines() if line.startswith("│")]
    assert len(rows) == 1 and "FeO_U_relax_custodian" in rows[0]  # one line, not wrapped
    no_color = _in_pty(cmd, 100, {**env, "NO_COLOR": "1"})
    assert not ANSI.search(no_color.split("\r\x1b[K", 1)[1])


def test_too_many_columns_for_the_terminal_prints_one_block_per_row(monkeypatch):
    columns = [f"column {i}" for i in range(12)]
    rows = [[f"r{k}c{i}" for i in range(12)] for k in range(2)]
    out, stream = _terminal(60, monkeypatch, color=False)  # 12 x 4 + frame > 60
    out.table("title", columns, rows)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "title" and not any(line.startswith(("┏", "│")) for line in lines)
    assert lines[2] == "column 0 r0c0" and lines[3].split() == ["column", "1", "r0c1"]
    assert sum(line.strip().startswith("column 11") for line in lines) == 2
    assert max(cell_width(line) for line in lines) <= 60
