"""Windowed reading of a vasprun.xml ``<partial>`` block: element sums over a few grid rows.

The analysis needs two things from the site/orbital-projected DOS of a run with an in-gap
level: the DOS projected on the host elements over the energy window around the level, and
the element shares at the level's grid point.  Both are sums over sites and orbitals, and both
only concern the rows of the energy grid between the host valence band and the conduction
onset.  VASP writes every ``(ion, spin)`` set of ``<partial>`` as ``NEDOS`` rows of one
Fortran format, so once the first row of each set is located (a few bytes per set, checked
against the ``ion N`` / ``spin S`` headers and the set's closing tag), row ``k`` of any set is
at a known byte offset: the rows of the window are sliced out of the memory map (the rest of
the ~200 MB block is never paged in) and their digits summed column-wise with numpy, over the
sites of each element first and then over the digit columns (integer mantissas, exact in
float64, one correctly rounded division at the end).

Anything unexpected (rows of different lengths, exponents, ``****``, a set that does not hold
``NEDOS`` rows, headers out of order) makes :func:`index_partial` or
:meth:`PartialIndex.element_sums` return None, and the caller falls back to the full parse of
:func:`polaronflow.analysis.readers.read_pdos` (and its errors).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: bytes after OR 0x10: '<', newline, '.', '-', '0', '9'.
_LT, _NL16, _DOT16, _MINUS16 = np.uint8(0x3C), np.uint8(0x1A), np.uint8(0x3E), np.uint8(0x3D)
_ZERO, _NINE = np.uint8(0x30), np.uint8(0x39)


@dataclass
class PartialIndex:
    """Where every ``(ion, spin)`` set of a ``<partial>`` block starts, and its row format."""

    buf: Any
    #: (nions * nspin,) byte offset of the first row line of each set, ion-major.
    starts: np.ndarray
    nions: int
    nspin: int
    nedos: int
    #: bytes per row line (newline included); the numbers lie in columns [c0, c1).
    length: int
    c0: int
    c1: int
    #: column (relative to c0) of each field's decimal point, and digits after it.
    dots: np.ndarray
    frac: int
    #: the grid row of the first row held per set, and the rows per set in the file (a
    #: streamed gzip keeps only rows [row0, row0 + nedos) of each set).
    row0: int = 0
    total: int = -1

    def __post_init__(self) -> None:
        if self.total < 0:
            self.total = self.nedos

    def covers(self, start: int, stop: int) -> bool:
        """Whether grid rows [start, stop) (clipped to the grid) are held."""
        start, stop = max(0, start), min(self.total, stop)
        return self.row0 <= start and stop <= self.row0 + self.nedos

    def element_sums(
        self, species: list[str], start: int, stop: int
    ) -> dict[str, np.ndarray] | None:
        """{element: (nspin, stop - start)} the DOS of rows [start, stop) summed over the
        element's sites and all orbitals, states/eV; None when the rows are not plain
        fixed-width decimals (the caller then parses the block in full)."""
        start, stop = max(0, start), min(self.total, stop)
        if not self.covers(start, stop):
            return None
        nrows = stop - start
        start -= self.row0  # row index inside the rows held
        if len(species) != self.nions or nrows <= 0:
            return None
        # The orbital fields: everything right of the energy field.
        f0 = int(self.dots[0]) + self.frac + 1
        dots = self.dots[1:] - f0
        width = self.c1 - self.c0 - f0
        weights = np.zeros(width)
        bounds = [0]
        for d in dots:
            hi = int(d) + self.frac + 1
            for col in range(bounds[-1], hi):
                if col != d:
                    weights[col] = 10.0 ** (self.frac + d - col - (1 if col < d else 0))
            bounds.append(hi)
        # A few ions at a time, so that the passes below run in cache, through one buffer
        # (a fresh one per chunk costs its page faults again: ~1/3 of the time here).
        step = max(1, (4 << 20) // (nrows * self.length * self.nspin))
        most = max(species.count(el) for el in set(species))
        scratch = np.empty((min(step, most) * self.nspin, nrows, self.length), np.uint8)
        out: dict[str, np.ndarray] = {}
        for el in dict.fromkeys(species):
            ions = [i for i, sp in enumerate(species) if sp == el]
            total = np.zeros((self.nspin, nrows))
            for k in range(0, len(ions), step):
                chunk = ions[k : k + step]
                part = self._sum_rows(chunk, start, nrows, f0, dots, bounds, weights, scratch)
                if part is None:
                    return None
                total += part
            out[el] = total / 10.0**self.frac
        return out

    def _sum_rows(
        self,
        ions: list[int],
        start: int,
        nrows: int,
        f0: int,
        dots: np.ndarray,
        bounds: list[int],
        weights: np.ndarray,
        scratch: np.ndarray,
    ) -> np.ndarray | None:
        """(nspin, nrows) sum over ``ions`` and orbitals of the rows, times 10**frac."""
        L, nspin = self.length, self.nspin
        lo = self.c0 - 3  # from "<r>" to the end of the line
        sets = [s for i in ions for s in self.starts[i * nspin : (i + 1) * nspin]]
        lines = scratch[: len(sets)]
        for j, s in enumerate(sets):
            at_row = int(s) + start * L
            if isinstance(self.buf, FileBytes):
                if not self.buf.readinto(lines[j], at_row):
                    return None
            else:
                rows = np.frombuffer(self.buf, np.uint8, count=nrows * L, offset=at_row)
                lines[j] = rows.reshape(nrows, L)
        # OR 0x10 maps ' ' to '0' and keeps the digits; '<' stays, newline becomes 0x1a,
        # '.' 0x3e, '-' 0x3d, and '*', '+', letters (overflow, exponents, NaN) fall outside
        # '0'-'9' (only the punctuation !"#$%&'() would pass, which VASP never writes here).
        np.bitwise_or(lines, np.uint8(16), out=lines)
        # Every pass below runs over the whole contiguous buffer, reducing over the sets: the
        # least and the greatest byte at each (spin, row, column) say whether every set holds
        # the same markers there and only digits in the fields (a pass over strided columns
        # costs numpy a loop per row: ~8x slower).
        grid = lines.reshape(len(ions), nspin, nrows * L)
        least = np.minimum.reduce(grid, axis=0).reshape(nspin, nrows, L)[..., lo:]
        greatest = np.maximum.reduce(grid, axis=0).reshape(nspin, nrows, L)[..., lo:]

        def every(col: Any, value: np.uint8) -> bool:
            return bool((least[..., col] == value).all() and (greatest[..., col] == value).all())

        if not (every(0, _LT) and every(self.c1 - lo, _LT) and every(-1, _NL16)):
            return None
        gaps = np.diff(dots)
        if len(dots) > 1 and (gaps == gaps[0]).all():  # fields of one width: a strided view
            at: Any = slice(int(dots[0]), int(dots[-1]) + 1, int(gaps[0]))
        else:
            at = dots
        fields = slice(3 + f0, self.c1 - lo)
        low, high = least[..., fields].copy(), greatest[..., fields].copy()
        if not ((low[..., at] == _DOT16).all() and (high[..., at] == _DOT16).all()):
            return None
        low[..., at] = high[..., at] = _ZERO  # the points carry no weight
        if bounds[-1] < low.shape[-1] and not (
            (low[..., bounds[-1] :] == _ZERO).all() and (high[..., bounds[-1] :] == _ZERO).all()
        ):
            return None
        if low.min() >= _ZERO and high.max() <= _NINE:
            # Plain digits: summed over the sites first (exact integers), then weighed by
            # their decimal place (the points' columns weigh 0); each byte carried '0' = 48
            # on top of its digit.
            wide = np.uint16 if len(ions) * 255 < 1 << 16 else np.uint32
            total = np.add.reduce(grid, axis=0, dtype=wide).reshape(nspin, nrows, L)
            sums = total[..., lo:][..., fields].astype(np.int64) - 48 * len(ions)
            return sums @ weights
        x = lines[..., lo:][..., fields].reshape(len(ions), nspin, nrows, -1)
        x[..., at] = _ZERO
        minus = x == _MINUS16
        if not ((x >= _ZERO) & ((x <= _NINE) | minus)).all():
            return None
        # A negative projection (tetrahedron method): the sign per field, then the sum.
        digits = np.where(minus, np.uint8(0), x - _ZERO)
        mant = np.add.reduceat(digits * weights, bounds[:-1], axis=-1)
        neg = np.logical_or.reduceat(minus, bounds[:-1], axis=-1)
        return np.where(neg, -mant, mant).sum(axis=(0, 3))


class FileBytes:
    """Random access to a plain file by ``pread``: what the index walk and the row reads need
    of a ``bytes``/mmap (``find``, ``rfind``, slicing on absolute offsets), without mapping
    the file, so that only the bytes asked for are copied and none is counted as resident."""

    _STEP = 1 << 16

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def __del__(self) -> None:
        fd = getattr(self, "fd", None)
        if fd is not None:
            os.close(fd)
            self.fd = None

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, span: slice) -> bytes:
        start, stop = max(0, span.start), min(self.size, span.stop)
        return os.pread(self.fd, stop - start, start) if stop > start else b""

    def readinto(self, out: np.ndarray, offset: int) -> bool:
        """Fill ``out`` (contiguous) from ``offset``; False if the file ends first."""
        return os.preadv(self.fd, [out], offset) == out.nbytes

    def find(self, sub: bytes, start: int, end: int | None = None) -> int:
        end = self.size if end is None else min(end, self.size)
        pos = start
        while pos < end:
            stop = min(end, pos + self._STEP)
            at = self[pos:stop].find(sub)
            if at >= 0 and pos + at + len(sub) <= end:
                return pos + at
            if stop >= end:
                return -1
            pos = stop - len(sub) + 1
        return -1

    def rfind(self, sub: bytes, start: int, end: int) -> int:
        at = self[start:end].rfind(sub)
        return start + at if at >= 0 else -1


class ByteStream:
    """A forward-only byte source (a gzip stream being inflated) with the ``find``/``rfind``/
    slicing of ``bytes`` on absolute offsets, keeping only what lies past :meth:`release`."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.data = bytearray()
        self.base = 0  # absolute offset of data[0]
        self.eof = False

    def _more(self) -> bool:
        chunk = next(self.chunks, None)
        if chunk is None:
            self.eof = True
            return False
        self.data += chunk
        return True

    def _ensure(self, end: int) -> None:
        while self.base + len(self.data) < end and not self.eof:
            self._more()

    def release(self, upto: int) -> None:
        """Forget the bytes before ``upto`` (compacted in large steps, not per call)."""
        cut = upto - self.base
        if cut > (4 << 20) and cut > len(self.data) // 2:
            del self.data[:cut]
            self.base = upto

    def find(self, sub: bytes, start: int, end: int = 1 << 62) -> int:
        pos = start
        while True:
            avail = self.base + len(self.data)
            at = self.data.find(sub, max(0, pos - self.base), min(end, avail) - self.base)
            if at >= 0:
                return at + self.base
            if avail >= end or not self._more():
                return -1
            pos = max(start, avail - len(sub) + 1)

    def rfind(self, sub: bytes, start: int, end: int) -> int:
        self._ensure(end)
        at = self.data.rfind(sub, max(0, start - self.base), end - self.base)
        return at + self.base if at >= 0 else -1

    def __getitem__(self, span: slice) -> bytes:
        self._ensure(span.stop)
        return bytes(self.data[span.start - self.base : span.stop - self.base])


def _row_format(row: bytes) -> tuple[int, int, np.ndarray, int] | None:
    """(c0, c1, decimal points, decimals) of a ``<r>`` row line, or None if irregular."""
    c0 = row.find(b"<r>") + 3
    c1 = row.rfind(b"</r>")
    if c0 < 3 or c1 <= c0:
        return None
    numbers = np.frombuffer(row[c0:c1], np.uint8)
    dots = np.flatnonzero(numbers == 46)
    if len(dots) < 2:
        return None
    fracs = set()
    for d in dots:
        k = d + 1
        while k < len(numbers) and 48 <= numbers[k] <= 57:
            k += 1
        fracs.add(int(k - d - 1))
    if len(fracs) != 1 or 0 in fracs:
        return None
    return c0, c1, dots, fracs.pop()


def index_partial(
    buf: Any,
    span: tuple[int, int],
    nions: int,
    nspin: int,
    keep_rows: tuple[int, int] | None = None,
) -> PartialIndex | None:
    """Locate the first row of every set of the ``<partial>`` block at ``span`` of ``buf``.

    Touches only the headers between sets (and the last row of each).  ``buf`` is random
    access (mmap, bytes), or a :class:`ByteStream` with ``keep_rows``: then the grid rows
    [lo, hi) of every set are copied out as the stream goes past, and the index holds only
    those.  Returns None when the block does not have the expected ion-major ``nions`` x
    ``nspin`` sets of equal, fixed-width rows.
    """
    a, b = span
    if nions <= 0 or nspin <= 0:
        return None
    first = buf.find(b"<r>", a, b)
    if first < 0:
        return None
    ls = buf.rfind(b"\n", a, first) + 1
    le = buf.find(b"\n", first, b) + 1
    close = buf.find(b"</set>", first, b)
    if le <= 0 or close < 0:
        return None
    length = le - ls
    nedos, rem = divmod(buf.rfind(b"\n", ls, close) + 1 - ls, length)
    if rem or nedos == 0:
        return None
    fmt = _row_format(buf[ls:le])
    if fmt is None:
        return None
    c0, c1, dots, frac = fmt
    lo, hi = (0, nedos) if keep_rows is None else (max(0, keep_rows[0]), min(nedos, keep_rows[1]))
    if hi <= lo:
        return None
    starts = np.empty(nions * nspin, dtype=np.int64)
    size = (hi - lo) * length  # bytes kept per set
    kept = bytearray(size * nions * nspin if keep_rows is not None else 0)
    prev = a
    for k in range(nions * nspin):
        ion, spin = divmod(k, nspin)
        at = buf.find(b"<r>", prev, min(b, prev + 1024))
        if at < 0:
            return None
        row = buf.rfind(b"\n", prev, at) + 1
        head = bytes(buf[prev:row])
        if f'comment="spin {spin + 1}"'.encode() not in head:
            return None
        if spin == 0 and f'comment="ion {ion + 1}"'.encode() not in head:
            return None
        if k and b"</set>" not in head:
            return None
        end = row + nedos * length
        last = bytes(buf[end - length : end + 64])
        if last[c0 - 3 : c0] != b"<r>" or last[c1 : c1 + 4] != b"</r>" or last[length - 1] != 10:
            return None
        if not last[length:].lstrip().startswith(b"</set>"):
            return None
        if keep_rows is None:
            starts[k] = row
        else:
            starts[k] = k * size
            kept[k * size : (k + 1) * size] = buf[row + lo * length : row + hi * length]
            buf.release(end)
        prev = end
    # After the last set: the ion's and the block's closing tags, no further rows.
    tail = bytes(buf[prev : prev + 256])
    if b"</partial>" not in tail or b"<r>" in tail.split(b"</partial>")[0]:
        return None
    if keep_rows is None:
        return PartialIndex(buf, starts, nions, nspin, nedos, length, c0, c1, dots, frac)
    return PartialIndex(kept, starts, nions, nspin, hi - lo, length, c0, c1, dots, frac, lo, nedos)
