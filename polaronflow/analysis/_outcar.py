"""OUTCAR and OSZICAR reading on raw bytes.

What the analysis wants from an OUTCAR sits either at its top (parameters, POTCARs) or at its
end (the last "magnetization (x)" table, E-fermi, the total moment, the timing block), so the
last occurrences are found with ``rfind`` from the end and the middle of a long relaxation is
only read when there is no vasprun.xml to give the per-step energies.
"""

from __future__ import annotations

import re
from typing import Any

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

#: OUTCAR parameter echo: name -> (regex, kind).  Searched after "Dimension of arrays" so
#: that POTCAR header lines (which also contain "=") cannot match.
_PARAMS: dict[str, tuple[re.Pattern[bytes], str]] = {
    name: (re.compile(rb"(?<![A-Za-z_])" + re.escape(name.encode()) + rb"\s*=\s*([^\s;]+)"), kind)
    for name, kind in (
        ("ISPIN", "int"),
        ("NELM", "int"),
        ("EDIFF", "float"),
        ("EDIFFG", "float"),
        ("NSW", "int"),
        ("IBRION", "int"),
        ("ISIF", "int"),
        ("ENCUT", "float"),
        ("ISMEAR", "int"),
        ("SIGMA", "float"),
        ("LORBIT", "int"),
        ("NUPDOWN", "float"),
        ("GGA", "str"),
        ("METAGGA", "str"),
        ("NELECT", "float"),
        ("NBANDS", "int"),
        ("NIONS", "int"),
        ("NEDOS", "int"),
        ("LDAUTYPE", "int"),
    )
}
_LDAU_LIST = {
    name: re.compile(rb"for each species " + name.encode() + rb"\s*=\s*([^\r\n]*)")
    for name in ("LDAUL", "LDAUU", "LDAUJ")
}


def _num(tok: bytes) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def tail_complete(buf: Any) -> bool:
    """The OUTCAR ends with VASP's timing block (the run finished)."""
    return buf.rfind(_TIMING, max(0, len(buf) - (1 << 20))) >= 0


def last_match(buf: Any, pattern: re.Pattern[bytes], anchor: bytes) -> re.Match[bytes] | None:
    """Last match of ``pattern`` whose text starts at the last ``anchor`` (found by rfind)."""
    at = buf.rfind(anchor)
    if at < 0:
        return None
    return pattern.match(buf, at)


def site_moments(buf: Any) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """Last complete "magnetization (x)" table: totals, orbital columns, orbital labels."""
    end = len(buf)
    while True:
        at = buf.rfind(b" magnetization (x)", 0, end)
        if at < 0:
            return None
        table = _parse_mag_table(buf, at)
        if table is not None:
            return table
        end = at  # the last table was cut short (truncated file): use the one before


def _parse_mag_table(buf: Any, at: int) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    # Row count is unknown until the closing dashes, so read a generous window.
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
            toks = s.split()
            try:
                rows.append([float(t) for t in toks[1:]])
            except ValueError:
                return None
    if header is None or not rows or any(len(r) != len(header) for r in rows):
        return None
    arr = np.array(rows)
    return arr[:, -1].copy(), arr[:, :-1].copy(), header[:-1]


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
        for name, (pat, kind) in _PARAMS.items():
            m = pat.search(block)
            if not m:
                continue
            tok = m.group(1).decode("latin-1")
            if kind == "str":
                params[name] = tok
            else:
                val = _num(m.group(1))
                params[name] = int(val) if (kind == "int" and val is not None) else val
        if re.search(rb"LDA\+U is selected", block):
            params["LDAU"] = True
            for name, pat in _LDAU_LIST.items():
                m = pat.search(block)
                if m:
                    vals = [_num(t) for t in m.group(1).split()]
                    params[name] = [int(v) for v in vals] if name == "LDAUL" else vals
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
