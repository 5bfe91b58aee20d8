"""Low-level byte access for the fast readers: mmap for plain files, one-pass gunzip for .gz.

Plain files are memory-mapped so that blocks the caller never looks at (the hundreds of MB of
``<projected>`` and ``<partial>`` data in a LORBIT vasprun.xml) are never paged in.  A gzip
stream cannot be skipped through, so it is decompressed once, in chunks, and the *contents* of
the elided blocks are dropped on the fly (their open and close tags are kept), so the result
stays small and the same locating code works on both.
"""

from __future__ import annotations

import mmap
import zlib
from collections.abc import Iterator
from pathlib import Path

from polaronflow.errors import RunReadError

try:  # ISA-L inflates 2-3x faster than zlib; optional, same API.
    from isal import isal_zlib as _zlib_impl
except ImportError:  # pragma: no cover - depends on the environment
    _zlib_impl = zlib

#: Decompressed bytes handed back per inflate call: big enough to amortise Python overhead,
#: small enough to keep peak memory low while skipping elided blocks.
_CHUNK_OUT = 8 << 20
_CHUNK_IN = 1 << 20


def is_gzip(path: Path) -> bool:
    return path.name.endswith(".gz")


def head_bytes(path: Path, n: int = 4096) -> bytes:
    """First ``n`` bytes of the (decompressed) file; b"" for an empty or unreadable stream."""
    if is_gzip(path):
        d = _zlib_impl.decompressobj(31)
        out = b""
        try:
            with open(path, "rb") as fh:
                while len(out) < n:
                    raw = fh.read(65536)
                    if not raw:
                        break
                    out += d.decompress(raw, n - len(out))
        except Exception:  # zlib.error, isal's IsalError, OSError: a corrupt stream
            return out
        return out[:n]
    with open(path, "rb") as fh:
        return fh.read(n)


def map_plain(path: Path) -> mmap.mmap | bytes:
    """Read-only memory map of a plain file (bytes for an empty file)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


Elide = tuple[tuple[bytes, bytes, bytes | None], ...]


def gunzip(path: Path, elide: Elide = (), stop_after: bytes | None = None) -> tuple[bytes, bool]:
    """Decompress a gzip file in one pass, dropping the contents of elided blocks.

    Parameters
    ----------
    path
        The ``.gz`` file.
    elide
        ``(open_tag, close_tag, lead)`` triples, e.g. ``(b"<projected>", b"</projected>",
        b"eigenvalues")``: the bytes between open and close tag are dropped (the tags are
        kept), except a child element named ``lead`` that comes first in the block.
    stop_after
        Stop inflating once this tag has been kept (e.g. ``b"</partial>"`` when nothing after
        it is wanted); the stream then counts as not complete.

    Returns
    -------
    data, stream_complete
        The kept bytes, and False when the gzip stream is cut short (a truncated file).
    """
    d = _zlib_impl.decompressobj(31)
    filt = _ElidingFilter(elide) if elide else None
    parts: list[bytes] = []
    stopped = False
    try:
        with open(path, "rb") as fh:
            while not stopped:
                raw = fh.read(_CHUNK_IN)
                if not raw:
                    break
                while raw:
                    chunk = d.decompress(raw, _CHUNK_OUT)
                    raw = d.unconsumed_tail
                    seen = len(parts)
                    if filt is None:
                        parts.append(chunk)
                    else:
                        filt.feed(chunk, parts)
                    if stop_after is not None and _contains(parts, seen, stop_after):
                        stopped = True
                        break
                if d.eof:
                    break
    except Exception as exc:  # zlib.error / isal's IsalError: both mean a corrupt stream
        raise RunReadError(f"{path}: not a readable gzip file ({exc})") from exc
    if filt is not None:
        filt.finish(parts)
    return b"".join(parts), bool(d.eof)


def iter_gunzip(path: Path) -> Iterator[bytes]:
    """The decompressed bytes of a gzip file, chunk by chunk (stop iterating to stop reading).

    Raises
    ------
    RunReadError
        A corrupt stream.
    """
    d = _zlib_impl.decompressobj(31)
    try:
        with open(path, "rb") as fh:
            while not d.eof:
                raw = fh.read(_CHUNK_IN)
                if not raw:
                    break
                while raw:
                    chunk = d.decompress(raw, _CHUNK_OUT)
                    raw = d.unconsumed_tail
                    if chunk:
                        yield chunk
    except Exception as exc:  # zlib.error / isal's IsalError: both mean a corrupt stream
        raise RunReadError(f"{path}: not a readable gzip file ({exc})") from exc


def _contains(parts: list[bytes], seen: int, tag: bytes) -> bool:
    """Whether ``tag`` occurs in the parts from index ``seen`` on (or straddles into them)."""
    n = len(tag) - 1
    prev = parts[seen - 1][-n:] if seen else b""
    for part in parts[seen:]:
        if tag in prev + part[:n] or tag in part:
            return True
        prev = part[-n:] if len(part) >= n else (prev + part)[-n:]
    return False


class _ElidingFilter:
    """Streaming state machine: keep -> (probe -> lead ->) skip -> keep.

    A few bytes are carried from one chunk to the next so that a tag split across two
    chunks is still found.
    """

    _PROBE = 256  # a lead child must start within this many bytes of the open tag

    def __init__(self, elide: Elide) -> None:
        self.elide = elide
        self.mode = "keep"
        self.spec: tuple[bytes, bytes, bytes | None] | None = None
        self.carry = b""
        self.maxlen = max(max(len(o), len(c)) for o, c, _ in elide)
        self.probe: tuple[bytes, int] | None = None

    def feed(self, chunk: bytes, parts: list[bytes]) -> None:
        buf = self.carry + chunk
        self.carry = b""
        pos = 0
        n = len(buf)
        while True:
            if self.mode == "keep":
                hits = [(buf.find(o, pos), i) for i, (o, _, _) in enumerate(self.elide)]
                hits = [h for h in hits if h[0] >= 0]
                if not hits:
                    keep_to = max(pos, n - (self.maxlen - 1))
                    parts.append(buf[pos:keep_to])
                    self.carry = buf[keep_to:]
                    return
                at, i = min(hits)
                self.spec = self.elide[i]
                end = at + len(self.spec[0])
                parts.append(buf[pos:end])
                pos = end
                self.mode = "probe" if self.spec[2] else "skip"
            elif self.mode == "probe":
                if n - pos < self._PROBE:
                    self.carry = buf[pos:]
                    return
                lead = b"<" + self.spec[2] + b">"  # type: ignore[index,operator]
                self.mode = (
                    "lead" if buf[pos : pos + self._PROBE].lstrip().startswith(lead) else "skip"
                )
            elif self.mode == "lead":
                close = b"</" + self.spec[2] + b">"  # type: ignore[index,operator]
                at = buf.find(close, pos)
                if at < 0:
                    keep_to = max(pos, n - (len(close) - 1))
                    parts.append(buf[pos:keep_to])
                    self.carry = buf[keep_to:]
                    return
                parts.append(buf[pos : at + len(close)])
                pos = at + len(close)
                self.mode = "skip"
            else:  # skip
                close = self.spec[1]  # type: ignore[index]
                if self.probe is None:
                    self.probe = _rare_byte(close, buf[pos : pos + (1 << 16)])
                at = _find_with_probe(buf, close, pos, self.probe)
                if at < 0:
                    self.carry = buf[max(pos, n - (len(close) - 1)) :]
                    return
                parts.append(b"\n")
                pos = at
                self.mode = "keep"
                self.probe = None

    def finish(self, parts: list[bytes]) -> None:
        if self.mode != "skip":
            parts.append(self.carry)


def _rare_byte(tag: bytes, sample: bytes) -> tuple[bytes, int]:
    """The byte of ``tag`` rarest in ``sample`` and its offset in the tag.

    Skipping a few hundred MB is bound by the search for the close tag; when one of its
    letters never occurs in the skipped data (``j`` of ``</projected>`` among numbers and
    ``<set comment="band 1">``), ``bytes.find`` of that single byte runs at memchr speed and
    every hit is checked against the whole tag.
    """
    best = min(range(len(tag)), key=lambda i: sample.count(tag[i : i + 1]))
    return tag[best : best + 1], best


def _find_with_probe(buf: bytes, tag: bytes, pos: int, probe: tuple[bytes, int]) -> int:
    byte, offset = probe
    hits = 0
    while True:
        at = buf.find(byte, pos + offset)
        if at < 0:
            return -1
        if buf.startswith(tag, at - offset):
            return at - offset
        hits += 1
        if hits > 64:  # the byte is not rare here after all: plain substring search
            return buf.find(tag, pos)
        pos = at - offset + 1
