"""OUTCAR and OSZICAR reading on raw bytes.

What the analysis wants from an OUTCAR sits either at its top (parameters, POTCARs) or at its
end (the last "magnetization (x)" table, E-fermi, the total moment, the timing block), so the
last occurrences are found with ``rfind`` from the end and the middle of a long relaxation is
only read when there is no vasprun.xml to give the per-step energies.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

import numpy as np

_TIMING = b"General timing and accounting informations for this job"
_TOTEN = re.compile(rb"free  energy   TOTEN\s+=\s+(\S+)")
_E0 = re.compile(rb"energy\(sigma->0\)\s*=\s+(\S+)")
_EFERMI = re.compile(rb"E-fermi\s*:\s*(\S+)")
_NELECT_MAG = re.compile(rb"number of electron\s+(\S+)\s+magnetization\s+(\S+)")
_ITER = re.compile(rb"Iteration\s+(\d+)\s*\(\s*(\d+)\)")
_TITEL = re.compile(rb"TITEL\s*=\s*([^\r\n]*)")
_POTCAR_LINE = re.compile(rb"POTCAR:\s*([^\r\n]*)")
_VERSION = re.compile(rb"^\s*(vasp\.[^\s]+)", re.M)

#: OUTCAR parameter echo: name -> kind.  Searched after "Dimension of arrays" so that POTCAR
#: header lines (which also contain "=") cannot match.
_PARAM_KINDS: dict[str, str] = {
    "ISPIN": "int",
    "NELM": "int",
    "EDIFF": "float",
    "EDIFFG": "float",
    "NSW": "int",
    "IBRION": "int",
    "ISIF": "int",
    "ENCUT": "float",
    "ISMEAR": "int",
    "SIGMA": "float",
    "LORBIT": "int",
    "NUPDOWN": "float",
    "GGA": "str",
    "METAGGA": "str",
    "NELECT": "float",
    "NBANDS": "int",
    "NIONS": "int",
    "NEDOS": "int",
    "LDAUTYPE": "int",
    "PREC": "str",
    "LASPH": "bool",
    "LREAL": "bool",
    "LHFCALC": "bool",
    "HFSCREEN": "float",
    "AEXX": "float",
    "LUSE_VDW": "bool",
    "IVDW": "int",
    "LEXCH": "str",
}
#: One pass over the echo for all of them; :func:`_find_params` keeps each name's first
#: match that is not the tail of a longer name (``NELM``, not ``ENELM``).
_PARAMS_RE = re.compile(
    rb"("
    + b"|".join(re.escape(n.encode()) for n in sorted(_PARAM_KINDS, key=len, reverse=True))
    + rb")\s*=\s*([^\s;]+)"
)
_LDAU_LIST = {
    name: re.compile(rb"for each species " + name.encode() + rb"\s*=\s*([^\r\n]*)")
    for name in ("LDAUL", "LDAUU", "LDAUJ")
}


def _num(tok: bytes) -> float | None:
    """A number; NaN for a token VASP wrote but that is not one (``****`` overflow)."""
    try:
        return float(tok)
    except ValueError:
        # Fortran prints '****' when a value overflows its field: keep it visible as NaN so
        # the reader's finiteness check names it, instead of silently dropping the value.
        return float("nan")


def tail_complete(buf: Any) -> bool:
    """The OUTCAR ends with VASP's timing block (the run finished)."""
    return buf.rfind(_TIMING, max(0, len(buf) - (1 << 20))) >= 0


def last_match(buf: Any, pattern: re.Pattern[bytes], anchor: bytes) -> re.Match[bytes] | None:
    """Last match of ``pattern`` whose text starts at the last ``anchor`` (found by rfind)."""
    at = buf.rfind(anchor)
    if at < 0:
        return None
    return pattern.match(buf, at)


class MomentTable(NamedTuple):
    """The "magnetization (x)" table an OUTCAR's analysis uses."""

    totals: np.ndarray
    orbital: np.ndarray
    labels: list[str]
    #: 1-based ionic step the table belongs to.
    step: int
    #: why an earlier table was used (the last one is cut at the end of the file), or None.
    note: str | None


def site_moments(buf: Any) -> MomentTable | None:
    """The last "magnetization (x)" table.

    Only a table cut by the end of the file (a killed run, a truncated copy) falls back to the
    table before it, and the result says so in ``note``; a complete table whose numbers cannot
    be read (VASP's ``****`` overflow, NaN) is returned with NaN in those places, so that the
    caller's finiteness check names the file, the field and the ionic step.
    """
    at = buf.rfind(b" magnetization (x)")
    if at < 0:
        return None
    parsed = _parse_mag_table(buf, at)
    note = None
    if parsed is None:  # cut by the end of the file
        cut_step = _ionic_step(buf, at)
        at = buf.rfind(b" magnetization (x)", 0, at)
        if at < 0:
            return None
        parsed = _parse_mag_table(buf, at)
        if parsed is None:
            return None
        note = (
            f"the last magnetization table (ionic step {cut_step}) is cut by the end of the "
            f"file: site moments are from ionic step {_ionic_step(buf, at)}"
        )
    tot, orb, labels = parsed
    return MomentTable(tot, orb, labels, _ionic_step(buf, at), note)


def _ionic_step(buf: Any, at: int) -> int:
    """1-based ionic step of a table at offset ``at``.

    A table followed by a TOTEN line belongs to the step that line closes.  After the last
    TOTEN a finished run repeats the final table (same step); in a cut file a table there
    belongs to the next, unfinished step.
    """
    before = _count(buf, b"free  energy   TOTEN", 0, at)
    after = _count(buf, b"free  energy   TOTEN", at, len(buf))
    if after or not tail_complete(buf):
        return before + 1
    return max(before, 1)


def _count(buf: Any, needle: bytes, start: int, end: int) -> int:
    """Occurrences of ``needle`` in ``buf[start:end]`` (an mmap has no ``count``)."""
    n, pos = 0, buf.find(needle, start, end)
    while pos >= 0:
        n += 1
        pos = buf.find(needle, pos + len(needle), end)
    return n


def _parse_mag_table(buf: Any, at: int) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(totals, orbital columns, labels), or None when the table is cut by the end of file."""
    stop = buf.find(b"\ntot", at)
    if stop < 0:
        return None
    text = bytes(buf[at:stop]).decode("latin-1").splitlines()
    header = None
    rows: list[list[float]] = []
    for line in text[1:]:
        s = line.strip()
        if s.startswith("# of ion"):
            header = s.split()[3:]
        elif header is not None and s and s[0].isdigit():
            toks = s.split()[1:]
            vals = [_num(t.encode()) for t in toks]
            if len(vals) != len(header):  # overflowed fields run together
                vals = [float("nan")] * len(header)
            rows.append([float("nan") if v is None else v for v in vals])
    if header is None or not rows:
        return None
    arr = np.array(rows, dtype=float)
    return arr[:, -1].copy(), arr[:, :-1].copy(), header[:-1]


def _find_params(block: bytes) -> dict[str, bytes]:
    """name -> value token of the first ``NAME = value`` of each parameter in ``block``."""
    found: dict[str, bytes] = {}
    for m in _PARAMS_RE.finditer(block):
        name = m.group(1).decode()
        before = block[m.start() - 1 : m.start()]
        if name in found or before.isalpha() or before == b"_":
            continue
        found[name] = m.group(2)
        if len(found) == len(_PARAM_KINDS):
            break
    return found


def parse_outcar(buf: Any, *, full: bool) -> dict[str, Any]:
    """What the OUTCAR holds.  ``full`` also collects per-step energies and the structure."""
    out: dict[str, Any] = {"complete": tail_complete(buf)}
    size = len(buf)
    head_end = buf.find(b"Dimension of arrays")
    head = bytes(buf[: head_end if head_end >= 0 else min(size, 1 << 20)])
    titles = [" ".join(t.decode("latin-1").split()) for t in _TITEL.findall(head)]
    if not titles:
        seen: list[str] = []
        for t in _POTCAR_LINE.findall(head):
            name = " ".join(t.decode("latin-1").split())
            if name not in seen:
                seen.append(name)
        titles = seen
    out["potcars"] = titles
    vm = _VERSION.search(head)
    out["vasp_version"] = vm.group(1).decode() if vm else None

    if head_end >= 0:
        # The parameter echo is a few hundred lines long; 200 kB covers it with room.
        block = bytes(buf[head_end : head_end + 200_000])
        params: dict[str, Any] = {}
        found = _find_params(block)
        for name, kind in _PARAM_KINDS.items():
            if name not in found:
                continue
            raw = found[name]
            tok = raw.decode("latin-1")
            if kind == "str":
                params[name] = tok
            elif kind == "bool":
                params[name] = tok.strip(".").upper().startswith("T")
            else:
                val = _num(raw)
                if kind == "int":
                    val = int(val) if val is not None and math.isfinite(val) else None
                if val is not None:
                    params[name] = val
        if re.search(rb"LDA\+U is selected", block):
            params["LDAU"] = True
            for name, pat in _LDAU_LIST.items():
                m = pat.search(block)
                if m:
                    vals = [_num(t) for t in m.group(1).split()]
                    if name == "LDAUL":
                        vals = [int(v) if v is not None and math.isfinite(v) else -1 for v in vals]
                    params[name] = vals
        m = re.search(rb"\n\s*ZVAL\s*=\s*([-\d.\s]+)\n", block)
        if m:
            out["zval"] = [float(x) for x in m.group(1).split()]
        m = re.search(rb"ions per type\s*=\s*([\d\s]+)\n", block)
        if m:
            out["ions_per_type"] = [int(x) for x in m.group(1).split()]
        out["parameters"] = params

    m = last_match(buf, _EFERMI, b"E-fermi")
    out["efermi"] = _num(m.group(1)) if m else None
    m = last_match(buf, _NELECT_MAG, b"number of electron")
    out["total_moment"] = _num(m.group(2)) if m else None
    m = last_match(buf, _TOTEN, b"free  energy   TOTEN")
    out["e_fr"] = _num(m.group(1)) if m else None
    m = last_match(buf, _E0, b"energy(sigma->0)")
    out["e_0"] = _num(m.group(1)) if m else None
    out["moments"] = site_moments(buf)

    if full:
        out["ionic_energies"] = [_num(x) for x in _TOTEN.findall(buf)]
        steps: list[int] = []
        for m in _ITER.finditer(buf):
            ionic, elec = int(m.group(1)), int(m.group(2))
            while len(steps) < ionic:
                steps.append(0)
            steps[ionic - 1] = max(steps[ionic - 1], elec)
        out["electronic_steps"] = steps
        out["structure"] = _last_structure(buf)
    return out


def _last_structure(buf: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(lattice, cartesian positions, forces) of the last ionic step printed."""
    la = buf.rfind(b"direct lattice vectors")
    pa = buf.rfind(b"POSITION")
    if la < 0 or pa < 0:
        return None
    lines = bytes(buf[la : la + 400]).decode("latin-1").splitlines()[1:4]
    try:
        lattice = np.array([[float(x) for x in ln.split()[:3]] for ln in lines])
    except ValueError:
        return None
    end = buf.find(b"total drift", pa)
    if end < 0:
        return None
    rows = []
    for ln in bytes(buf[pa:end]).decode("latin-1").splitlines()[2:]:
        toks = ln.split()
        if len(toks) == 6:
            try:
                rows.append([float(t) for t in toks])
            except ValueError:
                return None
    if not rows or lattice.shape != (3, 3):
        return None
    arr = np.array(rows)
    return lattice, arr[:, :3], arr[:, 3:]


_OSZ_IONIC = re.compile(
    rb"^\s*(\d+)\s+F=\s*(\S+)\s+E0=\s*(\S+)\s+d E\s*=\s*\S+(?:\s+mag=\s*(\S+))?", re.M
)
_OSZ_SCF = re.compile(rb"^[A-Za-z]{2,}\s*:\s*\d+", re.M)


def parse_oszicar(buf: bytes) -> dict[str, Any]:
    """Per ionic step: F (free energy), E0, SCF step count and mag= (when printed)."""
    ionic = list(_OSZ_IONIC.finditer(buf))
    out: dict[str, Any] = {
        "e_fr": [_num(m.group(2)) for m in ionic],
        "e_0": [_num(m.group(3)) for m in ionic],
        "mag": [_num(m.group(4)) if m.group(4) else None for m in ionic],
    }
    steps = []
    prev = 0
    for m in ionic:
        steps.append(len(_OSZ_SCF.findall(buf, prev, m.start())))
        prev = m.end()
    out["electronic_steps"] = steps
    # SCF lines after the last ionic line belong to an unfinished step.
    out["unfinished_scf"] = len(_OSZ_SCF.findall(buf, prev))
    return out


_KPT_HEAD = re.compile(rb"k-point\s+\d+\s*:")
_KWEIGHTS = b"k-points in reciprocal lattice and weights"


def eigenvalues(buf: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int] | None:
    """The last eigenvalue/occupation listing of an OUTCAR (printed after each "E-fermi").

    Returns
    -------
    tuple or None
        ``(eigenvalues, occupations, k-point weights or None, ionic step)``: (nspin, nkpts,
        nbands) arrays in eV and electrons, the weights as printed near the top, the 1-based
        ionic step of the listing; None when the OUTCAR prints none (or the last is cut).
    """
    at = buf.rfind(b" E-fermi :")
    if at < 0:
        return None
    end = buf.find(b"-" * 40, at)
    if end < 0:
        return None
    text = bytes(buf[at:end]).decode("latin-1")
    spins = re.split(r"spin component\s+\d+", text)[1:] or [text]
    data: list[list[list[tuple[float, float]]]] = []
    for chunk in spins:
        kblocks = re.split(r"k-point\s+\d+\s*:", chunk)[1:]
        spin_rows = []
        for kb in kblocks:
            rows = []
            for line in kb.splitlines()[2:]:
                toks = line.split()
                if len(toks) < 3:
                    if rows:
                        break
                    continue
                if not toks[0].isdigit():
                    break
                rows.append((_num(toks[1].encode()), _num(toks[2].encode())))
            spin_rows.append(rows)
        data.append(spin_rows)
    if not data or not data[0] or not data[0][0]:
        return None
    nb = {len(r) for s in data for r in s}
    nk = {len(s) for s in data}
    if len(nb) != 1 or len(nk) != 1:
        return None  # ragged: a listing cut short
    arr = np.array(data, dtype=float)
    weights = None
    w0 = buf.find(_KWEIGHTS)
    if w0 >= 0:
        lines = bytes(buf[w0 : w0 + 200 * (arr.shape[1] + 2)]).decode("latin-1").splitlines()[1:]
        ws = []
        for line in lines[: arr.shape[1]]:
            toks = line.split()
            if len(toks) != 4:
                break
            ws.append(_num(toks[3].encode()))
        if len(ws) == arr.shape[1]:
            weights = np.array(ws, dtype=float)
    return arr[..., 0].copy(), arr[..., 1].copy(), weights, _ionic_step(buf, at)
