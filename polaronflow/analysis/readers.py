"""Fast readers: one VASP run folder → :class:`~polaronflow.analysis.rundata.RunData`.

:func:`read_run` reads what analysis needs from ``vasprun.xml``, ``OUTCAR``, ``OSZICAR``,
``CONTCAR``/``POSCAR``, ``DOSCAR`` and ``INCAR`` (each plain or ``.gz``) without importing
pymatgen: plain files are memory-mapped and only the blocks that are used are touched (the
``<projected>`` and, unless asked for, ``<partial>`` blocks of a LORBIT vasprun.xml are jumped
over); gzipped files are inflated once, dropping those blocks on the fly.  Numeric blocks are
parsed by numpy in bulk; a block that does not look as expected is re-parsed with
``xml.etree`` (see :mod:`polaronflow.analysis._vasprun`), and a complete vasprun.xml whose
layout the byte-offset walker does not recognise is read by pymatgen's ``Vasprun`` as a last
resort.  Results equal pymatgen's (tests/analysis/test_readers_corpus.py).

Energies: ``final_energy`` is the free energy TOTEN (``e_fr_energy``) and
``final_energy_sigma0`` is energy(sigma->0) (``e_0_energy``, repaired like pymatgen does for
VASP 5.4's wrong value), which is what pymatgen calls ``Vasprun.final_energy``.

File names: each kind is looked up as ``NAME``, then ``NAME.gz``, then custodian's
``NAME.relaxN`` / ``NAME.relaxN.gz`` with the highest N (the last run of a double
relaxation).  A path to a single file reads that file alone.

Which file wins when several hold the same quantity: vasprun.xml for energies, structures,
parameters, eigenvalues and DOS; OUTCAR for site moments (vasprun.xml has none) and the total
moment; OSZICAR, CONTCAR, DOSCAR and INCAR fill only what the others lack.  Two parameter
values are taken from the ``<incar>`` echo rather than ``<parameters>`` because VASP's
``<parameters>`` is known to get them wrong: METAGGA/GGA (r2SCAN shows as ``METAGGA = F``) and
the LDAU lists (truncated to one species in some VASP 5 versions).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from polaronflow.analysis import _bytesio, _outcar, _partial, _vasprun
from polaronflow.analysis.rundata import SYNTHETIC_MARKER, RunData
from polaronflow.errors import RunReadError

__all__ = [
    "StructureData",
    "find_run_files",
    "functional_label",
    "open_partial",
    "read_doscar",
    "read_incar",
    "read_outcar_moments",
    "read_pdos",
    "read_run",
    "read_structure_file",
]

#: kind -> base file name VASP writes.
FILE_KINDS: dict[str, str] = {
    "vasprun": "vasprun.xml",
    "outcar": "OUTCAR",
    "oszicar": "OSZICAR",
    "contcar": "CONTCAR",
    "poscar": "POSCAR",
    "doscar": "DOSCAR",
    "incar": "INCAR",
}
_RELAX = re.compile(r"\.relax(\d+)$")
#: blocks whose contents a gzip read drops: (open, close, leading child kept or None).
_BIG_BLOCKS = ((b"<projected>", b"</projected>", b"eigenvalues"),)
_PARTIAL_BLOCK = ((b"<partial>", b"</partial>", None),)

#: VASP's defaults for the parameters RunData promises, used when a file does not say.
_DEFAULTS: dict[str, Any] = {
    "ISPIN": 1,
    "NUPDOWN": -1.0,
    "NELM": 60,
    "EDIFF": 1e-4,
    "NSW": 0,
    "ISMEAR": 1,
    "SIGMA": 0.2,
    "LDAU": False,
}
_FROM_INCAR = ("METAGGA", "GGA", "LDAU", "LDAUTYPE", "LDAUU", "LDAUL", "LDAUJ")


class StructureData(NamedTuple):
    """A POSCAR/CONTCAR read without pymatgen."""

    species: list[str]
    lattice: np.ndarray
    frac_coords: np.ndarray
    comment: str


# --- locating files ---------------------------------------------------------------------


def _kind_of(name: str) -> str | None:
    base = name[:-3] if name.endswith(".gz") else name
    base = _RELAX.sub("", base)
    for kind, fname in FILE_KINDS.items():
        if base == fname:
            return kind
    return None


def find_run_files(path: str | Path) -> dict[str, Path]:
    """The VASP output files of a run folder, by kind.

    Parameters
    ----------
    path
        A run folder, or one file (then only that file is returned).

    Returns
    -------
    dict
        kind (``"vasprun"``, ``"outcar"``, ``"oszicar"``, ``"contcar"``, ``"poscar"``,
        ``"doscar"``, ``"incar"``) → path; kinds with no file are absent.

    Raises
    ------
    RunReadError
        The path does not exist, or is a file VASP does not write.
    """
    p = Path(path)
    if not p.exists():
        raise RunReadError(f"{p}: no such run folder or file")
    if p.is_file():
        kind = _kind_of(p.name)
        if kind is None:
            valid = ", ".join(FILE_KINDS.values())
            raise RunReadError(f"{p}: not a VASP output file name (expected one of {valid})")
        return {kind: p}
    names = {c.name: c for c in p.iterdir() if c.is_file()}
    found: dict[str, Path] = {}
    for kind, fname in FILE_KINDS.items():
        for cand in (fname, fname + ".gz"):
            if cand in names:
                found[kind] = names[cand]
                break
        else:
            relax = []
            for name, c in names.items():
                stem = name[:-3] if name.endswith(".gz") else name
                m = _RELAX.search(stem)
                if m and stem[: m.start()] == fname:
                    relax.append((int(m.group(1)), not name.endswith(".gz"), c))
            if relax:
                found[kind] = max(relax)[2]
    return found


# --- the main entry point ---------------------------------------------------------------


def read_run(
    path: str | Path,
    *,
    pdos: bool = False,
    eigen: bool = True,
    dos: bool = True,
    strict: bool = True,
) -> RunData:
    """Read one VASP run folder (or one output file) into a :class:`RunData`.

    Parameters
    ----------
    path
        Run folder or a single vasprun.xml/OUTCAR/... file, plain or gzipped.
    pdos
        Also read the site/orbital-projected DOS (``<partial>``); off by default because it
        is most of a LORBIT vasprun.xml and slow to parse.
    eigen
        Read eigenvalues and occupations.
    dos
        Read the total DOS.
    strict
        Raise :class:`~polaronflow.errors.RunReadError` when a file is empty, not what its
        name says, truncated, inconsistent with the others, or when no final energy can be
        found.  With ``strict=False`` whatever is readable is returned and the reasons are
        listed in ``RunData.problems`` (``complete`` and the convergence flags stay False).

    Returns
    -------
    RunData
        Energies in eV, lengths in Å, moments in μB.
    """
    p = Path(path)
    files = find_run_files(p)
    if not files:
        raise RunReadError(
            f"{p}: no VASP output files (looked for vasprun.xml, OUTCAR, OSZICAR, CONTCAR, "
            "DOSCAR, INCAR, plain or .gz)"
        )
    data = RunData(path=p, files=dict(files))
    fatal: list[str] = []  # problems that strict mode turns into an exception

    for f in files.values():
        if SYNTHETIC_MARKER.encode() in _bytesio.head_bytes(f):
            data.synthetic = True
            break

    complete_flags: list[bool] = []
    scf: list[float] = []
    if "vasprun" in files:
        try:
            ok, scf = _read_vasprun(data, files["vasprun"], pdos=pdos, eigen=eigen, dos=dos)
            complete_flags.append(ok)
            if not ok:
                fatal.append(data.problems[-1])
        except RunReadError as exc:
            if strict:
                raise
            data.problems.append(str(exc))
            complete_flags.append(False)
    if "outcar" in files:
        try:
            ok = _read_outcar(data, files["outcar"], full=data.final_energy is None, eigen=eigen)
            complete_flags.append(ok)
            if not ok:
                fatal.append(data.problems[-1])
        except RunReadError as exc:
            if strict:
                raise
            data.problems.append(str(exc))
            complete_flags.append(False)
    if "oszicar" in files and (not data.ionic_energies or data.total_moment is None):
        _read_oszicar(data, files["oszicar"])
    if "incar" in files and not data.incar:
        try:
            data.incar = read_incar(files["incar"])
        except RunReadError as exc:
            data.problems.append(str(exc))
        for key, val in data.incar.items():
            if key in _FROM_INCAR:  # the OUTCAR echo prints METAGGA = F for r2SCAN
                data.parameters[key] = val
            else:
                data.parameters.setdefault(key, val)
    for kind, initial in (("contcar", False), ("poscar", True)):
        if kind in files and (data.initial_lattice if initial else data.lattice) is None:
            try:
                st = read_structure_file(files[kind])
            except RunReadError as exc:
                data.problems.append(str(exc))
                continue
            if initial:
                data.initial_lattice, data.initial_frac_coords = st.lattice, st.frac_coords
            else:
                data.lattice, data.frac_coords = st.lattice, st.frac_coords
            if not data.species:
                data.species = st.species
    if "doscar" in files and ((dos and data.total_dos is None) or (pdos and data.pdos is None)):
        _fill_from_doscar(data, files["doscar"], pdos=pdos)

    _finish(data, complete_flags, scf)
    fatal.extend(_check_finite(data, strict=strict))
    if strict:
        if data.final_energy is None:
            names = ", ".join(f.name for f in files.values())
            fatal.append(f"{p}: no final energy in {names}")
        if fatal:
            raise RunReadError("; ".join(dict.fromkeys(fatal)))
    return data


# --- vasprun.xml ------------------------------------------------------------------------


def _open_vasprun(
    path: Path, *, keep_partial: bool, stop_after: bytes | None = None
) -> tuple[Any, bool]:
    """(buffer, gzip stream complete) with the kind checks every caller needs.

    ``stop_after``: a gzipped file is inflated only up to that tag (a plain file is mapped
    whole anyway, and only the pages looked at are read).
    """
    if _bytesio.is_gzip(path):
        elide = _BIG_BLOCKS if keep_partial else _BIG_BLOCKS + _PARTIAL_BLOCK
        buf, stream_ok = _bytesio.gunzip(path, elide, stop_after=stop_after)
    else:
        buf, stream_ok = _bytesio.map_plain(path), True
    if len(buf) == 0:
        raise RunReadError(f"{path}: empty file")
    start = bytes(buf[:512]).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not (start.startswith(b"<?xml") or start.startswith(b"<modeling")):
        raise RunReadError(f"{path}: not an XML file (a vasprun.xml starts with '<?xml')")
    if buf.find(b"<modeling", 0, 4096) < 0:
        raise RunReadError(f"{path}: XML but not a vasprun.xml (no <modeling> element)")
    return buf, stream_ok


def _read_vasprun(
    data: RunData, path: Path, *, pdos: bool, eigen: bool, dos: bool
) -> tuple[bool, list[float]]:
    """Fill ``data`` from a vasprun.xml; returns (file complete, final SCF energies)."""
    buf, stream_ok = _open_vasprun(path, keep_partial=pdos)
    first = buf.find(b"<calculation>")
    head = bytes(buf[: first if first >= 0 else len(buf)])

    gen = _vasprun.section(head, b"<generator>", b"</generator>")
    if gen:
        g = _vasprun.parse_items(gen)
        data.vasp_version = " ".join(
            " ".join(str(g.get(k, "")) for k in ("version", "subversion")).split()
        )
    inc = _vasprun.section(head, b"<incar>", b"</incar>")
    if inc:
        data.incar = _vasprun.parse_items(inc)
    par = _vasprun.section(head, b"<parameters>", b"</parameters>")
    if par:
        data.parameters = _vasprun.parse_parameters(par)
    for key in _FROM_INCAR:
        if key in data.incar:
            data.parameters[key] = data.incar[key]
    ai = _vasprun.section(head, b"<atominfo>", b"</atominfo>")
    if ai:
        data.species, data.potcars = _vasprun.parse_atominfo(ai)
        types = _vasprun.parse_atomtypes(ai)
        data.species_blocks = [(el, n) for el, n, _ in types]
        if all(z is not None for _, _, z in types):
            data.zval = [float(z) for _, _, z in types]  # type: ignore[arg-type]
    kp = _vasprun.section(head, b"<kpoints>", b"</kpoints>")
    if kp:
        data.kpoints, data.kpoint_weights, data.kpoint_generation = _vasprun.parse_kpoints(kp)
    ini = _vasprun.section(head, b'<structure name="initialpos"', b"</structure>")
    if ini:
        st = _vasprun.parse_structure(ini)
        if st:
            data.initial_lattice, data.initial_frac_coords = st

    lay = _vasprun.locate(buf, len(data.species))
    if lay.partial:
        # Plain: the block's offsets; gzip (inflated with the block's contents dropped): the
        # how-manieth <partial> tag it is, which the full stream has in the same order.
        key = _file_key(path)
        if _bytesio.is_gzip(path):
            _PARTIAL_SPANS[key] = (-1, buf.count(b"<partial>", 0, lay.partial[0]))
        else:
            _PARTIAL_SPANS[key] = lay.partial
    if lay.complete and not any(buf.find(b"e_fr_energy", s, e) >= 0 for s, e in lay.calcs):
        # A complete file whose layout the byte-offset walker does not recognise (another
        # writer's formatting, say): let pymatgen's full XML parser read it.
        return _read_vasprun_general(data, path, pdos=pdos, eigen=eigen, dos=dos)
    last_body = None
    last_sc: tuple[list[float], list[float]] = ([], [])
    energies: dict[str, float] = {}
    for i, (s, e) in enumerate(lay.calcs):
        body = bytes(buf[s:e])
        en, nsc, sc_fr, sc_0 = _vasprun.calc_energies(body)
        if "e_fr_energy" not in en:  # a calculation cut short: no energy yet
            continue
        data.ionic_energies.append(en["e_fr_energy"])
        data.electronic_steps.append(nsc)
        energies, last_body, last_sc, last_idx = en, body, (sc_fr, sc_0), i
    if last_body is not None:
        data.final_energy = energies["e_fr_energy"]
        # VASP 5.4.x writes a wrong e_0_energy in the ionic <energy> block; rebuild it from
        # the last SCF step's sigma->0 correction (the same repair pymatgen makes).
        e0 = energies.get("e_0_energy")
        if last_sc[0] and last_sc[1]:
            fixed = round(last_sc[1][-1] - last_sc[0][-1] + energies["e_fr_energy"], 8)
            if e0 is None or abs(e0 - fixed) > 1e-7:
                e0 = fixed
        data.final_energy_sigma0 = e0
        struct = _vasprun.section(last_body, b"<structure", b"</structure>")
        st = _vasprun.parse_structure(struct) if struct else None
        if st:
            data.lattice, data.frac_coords = st
        data.forces = _vasprun.varray(last_body, b"forces")
        data.stress = _vasprun.varray(last_body, b"stress")
        final_calc = last_idx
    else:
        final_calc = -1
    if lay.finalpos:
        st = _vasprun.parse_structure(bytes(buf[lay.finalpos[0] : lay.finalpos[1]]))
        if st:
            data.lattice, data.frac_coords = st

    nspin = int(data.parameters.get("ISPIN", 1) or 1)
    eig_span = lay.proj_eigen or lay.eigen
    if eigen and eig_span and lay.eigen_calc == final_calc:
        _read_eigen(data, bytes(buf[eig_span[0] : eig_span[1]]), nspin, path)
    if lay.dos and lay.dos_calc == final_calc:
        d0 = lay.dos[0]
        limit = lay.partial[0] if lay.partial else (lay.dos[1] if lay.dos[1] > 0 else len(buf))
        data.efermi = _vasprun.efermi(bytes(buf[d0 : min(limit, d0 + 4096)]))
        if dos:
            # Searched in place: a file cut inside <partial> must not be copied whole.
            t0 = buf.find(b"<total>", d0, limit)
            t1 = buf.find(b"</total>", t0, limit) if t0 >= 0 else -1
            tot = bytes(buf[t0 : t1 + 8]) if t1 >= 0 else None
            if tot:
                arr = _vasprun.rows(tot, len(_vasprun.fields(tot)) or 3)
                nsets = max(1, _vasprun.count_sets(tot, b"spin"))
                arr = arr.reshape(nsets, -1, arr.shape[-1])
                data.dos_energies = arr[0, :, 0].copy()
                data.total_dos = arr[:, :, 1].copy()
        if pdos and lay.partial:
            _read_partial(data, buf, lay.partial, nspin)

    complete = lay.complete and stream_ok and lay.truncated_in is None
    if not complete:
        where = f" inside <{lay.truncated_in}>" if lay.truncated_in else ""
        how = "" if stream_ok else " (the gzip stream is cut short)"
        data.problems.append(
            f"{path}: truncated: the file ends{where} before </modeling>{how}; "
            "the run did not finish or the file was cut"
        )
    return complete, last_sc[0]


def _read_vasprun_general(
    data: RunData, path: Path, *, pdos: bool, eigen: bool, dos: bool
) -> tuple[bool, list[float]]:
    """The slow, tolerant path: pymatgen's ``Vasprun`` (full XML parse) into ``data``."""
    import warnings

    from pymatgen.electronic_structure.core import Spin
    from pymatgen.io.vasp import Vasprun

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vr = Vasprun(
                str(path), parse_dos=dos or pdos, parse_eigen=eigen, parse_potcar_file=False
            )
    except Exception as exc:  # any parse failure means the file is not a usable vasprun.xml
        raise RunReadError(f"{path}: unreadable vasprun.xml ({type(exc).__name__}: {exc})") from exc
    data.incar = dict(vr.incar)
    data.parameters = dict(vr.parameters)
    for key in _FROM_INCAR:
        if key in data.incar:
            data.parameters[key] = data.incar[key]
    data.potcars = [" ".join(t.split()) for t in vr.potcar_symbols]
    data.vasp_version = vr.vasp_version
    data.species = [str(site.specie) for site in vr.final_structure]
    data.lattice = vr.final_structure.lattice.matrix.copy()
    data.frac_coords = vr.final_structure.frac_coords.copy()
    data.initial_lattice = vr.initial_structure.lattice.matrix.copy()
    data.initial_frac_coords = vr.initial_structure.frac_coords.copy()
    steps = vr.ionic_steps
    data.ionic_energies = [s["e_fr_energy"] for s in steps]
    data.electronic_steps = [len(s["electronic_steps"]) for s in steps]
    if steps:
        data.final_energy = steps[-1]["e_fr_energy"]
        data.final_energy_sigma0 = float(vr.final_energy)
        data.forces = np.asarray(steps[-1].get("forces")) if "forces" in steps[-1] else None
        data.stress = np.asarray(steps[-1].get("stress")) if "stress" in steps[-1] else None
    data.kpoints = np.asarray(vr.actual_kpoints)
    data.kpoint_weights = np.asarray(vr.actual_kpoints_weights)
    data.efermi = vr.efermi
    spins = [Spin.up, Spin.down][: int(data.parameters.get("ISPIN", 1))]
    if eigen and vr.eigenvalues:
        arr = np.array([vr.eigenvalues[s] for s in spins])
        data.eigenvalues, data.occupations = arr[..., 0].copy(), arr[..., 1].copy()
    if dos and getattr(vr, "tdos", None) is not None:
        data.dos_energies = np.asarray(vr.tdos.energies)
        data.total_dos = np.array([vr.tdos.densities[s] for s in spins])
    if pdos and vr.pdos:
        orbs = list(vr.pdos[0])
        data.pdos = np.array([[[site[o][s] for o in orbs] for s in spins] for site in vr.pdos])
        data.pdos_orbitals = [o.name for o in orbs]
    scf = [e["e_fr_energy"] for e in steps[-1]["electronic_steps"]] if steps else []
    return True, scf


def _read_eigen(data: RunData, block: bytes, nspin: int, path: Path) -> None:
    arr = _vasprun.rows(block, 2)
    nk = len(data.kpoints) if data.kpoints is not None else _vasprun.count_sets(block, b"kpoint")
    nsets = max(1, _vasprun.count_sets(block, b"spin"))
    if nk == 0 or arr.shape[0] % (nsets * nk):
        data.problems.append(f"{path}: eigenvalue block does not match {nk} k-points")
        return
    arr = arr.reshape(nsets, nk, -1, 2)
    data.eigenvalues = arr[..., 0].copy()
    data.occupations = arr[..., 1].copy()


def _read_partial(data: RunData, buf: Any, span: tuple[int, int], nspin: int) -> None:
    """Fill ``pdos`` from the ``<partial>`` block at ``span`` of ``buf``.

    The block is ~half of a LORBIT vasprun.xml, so it is parsed in place (no copy) by the
    vectorised fixed-width parser; a block that is not strictly fixed-width goes through the
    general text parsers instead.
    """
    a, b = span
    head_end = buf.find(b"<set", a, b)
    labels = _vasprun.fields(bytes(buf[a : head_end if head_end > 0 else b]))
    ncols = len(labels)
    arr = _vasprun.rows_fixed_width(buf, a, b, ncols) if ncols else None
    if arr is None:
        block = bytes(buf[a:b])
        arr = _vasprun.rows(block, ncols)
        nions = _vasprun.count_sets(block, b"ion") or len(data.species)
        nsets = _vasprun.count_sets(block, b"spin") // max(1, nions) or nspin
    else:
        nions, nsets = len(data.species), nspin
    if nions == 0 or arr.shape[0] % (nions * nsets):
        data.problems.append(f"<partial> block does not match {nions} sites x {nsets} spins")
        return
    arr = arr.reshape(nions, nsets, -1, ncols)
    data.pdos = np.ascontiguousarray(arr[..., 1:].transpose(0, 1, 3, 2))
    data.pdos_orbitals = [_ORBITAL_NAMES.get(lab.strip(), lab.strip()) for lab in labels[1:]]
    if data.dos_energies is None:
        data.dos_energies = arr[0, 0, :, 0].copy()


# --- OUTCAR / OSZICAR ---------------------------------------------------------------------


def _load_text(path: Path) -> Any:
    if _bytesio.is_gzip(path):
        buf, _ = _bytesio.gunzip(path)
    else:
        buf = _bytesio.map_plain(path)
    if len(buf) == 0:
        raise RunReadError(f"{path}: empty file")
    if b"\x00" in bytes(buf[:4096]):
        raise RunReadError(f"{path}: binary data, not a VASP text output")
    return buf


def _read_outcar(data: RunData, path: Path, *, full: bool, eigen: bool = True) -> bool:
    buf = _load_text(path)
    if bytes(buf[:8192]).find(b"vasp") < 0 and bytes(buf[:8192]).find(b"POTCAR") < 0:
        raise RunReadError(f"{path}: not an OUTCAR (no VASP header)")
    out = _outcar.parse_outcar(buf, full=full)
    if not data.potcars:
        data.potcars = out["potcars"]
    data.vasp_version = data.vasp_version or out["vasp_version"]
    for key, val in out.get("parameters", {}).items():
        data.parameters.setdefault(key, val)
    if data.efermi is None:
        data.efermi = out["efermi"]
    # A truncated OUTCAR stops at an earlier step: reported as truncated below instead.
    if out["complete"] and not full and data.final_energy is not None and out["e_fr"] is not None:
        if abs(out["e_fr"] - data.final_energy) > 1e-3:
            msg = (
                f"{path}: mismatched calculation: the OUTCAR's final energy {out['e_fr']:.6f} eV "
                f"differs from the vasprun.xml's {data.final_energy:.6f} eV"
            )
            raise RunReadError(msg)
    if out["total_moment"] is not None:
        data.total_moment = out["total_moment"]
    if full:
        if out["e_fr"] is not None:
            data.final_energy = out["e_fr"]
            data.final_energy_sigma0 = out["e_0"]
        data.ionic_energies = [e for e in out["ionic_energies"] if e is not None]
        data.electronic_steps = out["electronic_steps"][: len(data.ionic_energies)]
        if out.get("ions_per_type") and data.potcars and not data.species_blocks:
            symbols = [t.split()[1].split("_")[0] for t in data.potcars if len(t.split()) > 1]
            if len(symbols) == len(out["ions_per_type"]):
                data.species_blocks = list(zip(symbols, out["ions_per_type"], strict=True))
        if not data.species and out.get("ions_per_type") and data.potcars:
            symbols = [t.split()[1].split("_")[0] for t in data.potcars if len(t.split()) > 1]
            if len(symbols) == len(out["ions_per_type"]):
                data.species = [
                    s for s, n in zip(symbols, out["ions_per_type"], strict=True) for _ in range(n)
                ]
        if out["structure"] is not None and data.lattice is None:
            lattice, cart, forces = out["structure"]
            data.lattice = lattice
            data.frac_coords = cart @ np.linalg.inv(lattice)
            data.forces = forces
    if not data.zval and out.get("zval"):
        data.zval = list(out["zval"])
    if full and eigen and data.eigenvalues is None:
        listing = _outcar.eigenvalues(buf)
        if listing is None:
            data.unavailable["eigenvalues"] = (
                "not available (no vasprun.xml, and the OUTCAR lists no eigenvalues)"
            )
        else:
            data.eigenvalues, data.occupations, weights, step = listing
            if data.kpoint_weights is None and weights is not None:
                data.kpoint_weights = weights
            data.origins["eigenvalues"] = data.origins["occupations"] = (path, step)
    moments = out["moments"]
    if moments is not None:
        tot, orb, labels = moments.totals, moments.orbital, moments.labels
        data.moments_step, data.moments_note = moments.step, moments.note
        data.origins["site_moments"] = (path, moments.step)
        if moments.note:
            data.problems.append(f"{path}: {moments.note}")
        if data.species and len(tot) != len(data.species):
            msg = (
                f"{path}: mismatched calculation: the OUTCAR magnetization table has "
                f"{len(tot)} ions but the run has {len(data.species)} sites"
            )
            raise RunReadError(msg)
        data.site_moments, data.site_moments_orbital, data.site_moments_orbitals = (
            tot,
            orb,
            labels,
        )
    if not out["complete"]:
        data.problems.append(
            f"{path}: truncated: no timing block at the end (the run did not finish or the "
            "file was cut)"
        )
    return bool(out["complete"])


def read_outcar_moments(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The last "magnetization (x)" table of an OUTCAR.

    Parameters
    ----------
    path
        An OUTCAR(.gz) or a run folder holding one.

    Returns
    -------
    (site_moments, orbital_moments, orbital_labels)
        (nsites,) totals in μB, (nsites, norb) orbital columns, e.g. ["s", "p", "d"].

    Raises
    ------
    RunReadError
        No OUTCAR, or it has no complete magnetization table (ISPIN 1, LORBIT unset).
    """
    files = find_run_files(path)
    if "outcar" not in files:
        raise RunReadError(f"{path}: no OUTCAR (site moments are read from it)")
    buf = _load_text(files["outcar"])
    table = _outcar.site_moments(buf)
    if table is None:
        raise RunReadError(
            f"{files['outcar']}: no 'magnetization (x)' table (needs ISPIN = 2 and LORBIT set)"
        )
    if not np.all(np.isfinite(table.totals)):
        raise RunReadError(
            f"{files['outcar']}: non-finite or overflowed ('****', NaN) site moments in the "
            f"magnetization table of ionic step {table.step}"
        )
    return table.totals, table.orbital, table.labels


def _read_oszicar(data: RunData, path: Path) -> None:
    try:
        buf = bytes(_load_text(path))
    except RunReadError as exc:
        data.problems.append(str(exc))
        return
    osz = _outcar.parse_oszicar(buf)
    if not data.ionic_energies and osz["e_fr"]:
        data.ionic_energies = [e for e in osz["e_fr"] if e is not None]
        data.electronic_steps = osz["electronic_steps"]
        if data.final_energy is None:
            data.final_energy = osz["e_fr"][-1]
            data.final_energy_sigma0 = osz["e_0"][-1]
    if data.total_moment is None and osz["mag"] and osz["mag"][-1] is not None:
        data.total_moment = osz["mag"][-1]


# --- INCAR, POSCAR/CONTCAR, DOSCAR ------------------------------------------------------


def _read_small_text(path: Path) -> str:
    buf = _load_text(path)
    return bytes(buf).decode("latin-1")


def read_incar(path: str | Path) -> dict[str, Any]:
    """An INCAR as a dict: keys upper case; ints, floats, bools and lists typed.

    Parameters
    ----------
    path
        INCAR(.gz) file.

    Returns
    -------
    dict
        e.g. ``{"METAGGA": "R2SCAN", "LDAUU": [5.0, 0.0], "LDAU": True}``.
    """
    text = _read_small_text(Path(path))
    out: dict[str, Any] = {}
    for line in text.splitlines():
        line = re.split(r"[!#]", line, maxsplit=1)[0]
        for stmt in line.split(";"):
            if "=" not in stmt:
                continue
            key, val = stmt.split("=", 1)
            key = key.strip().upper()
            if key:
                out[key] = _incar_value(val.strip())
    return out


def _incar_value(val: str) -> Any:
    toks = val.split()
    if not toks:
        return ""
    parsed = [_incar_token(t) for t in toks]
    if len(parsed) == 1:
        return parsed[0]
    if all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in parsed):
        return parsed
    return val


def _incar_token(tok: str) -> Any:
    up = tok.upper().strip(".")
    if up in ("T", "TRUE"):
        return True
    if up in ("F", "FALSE"):
        return False
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok


def read_structure_file(path: str | Path) -> StructureData:
    """A POSCAR/CONTCAR (VASP 5 format, plain or .gz) without pymatgen.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    StructureData
        species per site, (3, 3) lattice rows in Å, (nsites, 3) fractional coordinates.

    Raises
    ------
    RunReadError
        Empty, truncated or not a POSCAR; or VASP 4 format without element names.
    """
    p = Path(path)
    lines = _read_small_text(p).splitlines()
    try:
        scale = [float(x) for x in lines[1].split()]
        lattice = np.array([[float(x) for x in lines[i].split()[:3]] for i in (2, 3, 4)])
        symbols = lines[5].split()
        if all(s.lstrip("-").isdigit() for s in symbols):
            raise RunReadError(f"{p}: VASP 4 POSCAR without element names on line 6 (add them)")
        counts = [int(x) for x in lines[6].split()]
        i = 7
        if lines[i].strip()[:1] in ("s", "S"):
            i += 1
        cartesian = lines[i].strip()[:1] in ("c", "C", "k", "K")
        n = sum(counts)
        coords = np.array([[float(x) for x in lines[i + 1 + j].split()[:3]] for j in range(n)])
    except RunReadError:
        raise
    except (IndexError, ValueError) as exc:
        raise RunReadError(f"{p}: not a readable POSCAR/CONTCAR ({exc})") from exc
    if len(scale) == 3:
        lattice = lattice * np.array(scale)[:, None]
    elif scale[0] < 0:  # a negative scale is the cell volume
        lattice = lattice * (-scale[0] / abs(np.linalg.det(lattice))) ** (1 / 3)
    else:
        lattice = lattice * scale[0]
    if cartesian:
        s = scale[0] if len(scale) == 1 and scale[0] > 0 else 1.0
        frac = (coords * s) @ np.linalg.inv(lattice)
    else:
        frac = coords
    species = [
        sym.split("/")[0].split("_")[0]
        for sym, c in zip(symbols, counts, strict=False)
        for _ in range(c)
    ]
    return StructureData(species, lattice, frac, lines[0].strip())


def read_doscar(path: str | Path) -> dict[str, Any]:
    """A DOSCAR: E-fermi, energy grid, total DOS and (if present) site/orbital DOS.

    Returns
    -------
    dict
        ``efermi`` (eV), ``energies`` (nedos,), ``total`` (nspin, nedos), ``pdos``
        (nsites, nspin, norb, nedos) or None, ``orbitals`` (labels) or None.
    """
    p = Path(path)
    lines = _read_small_text(p).splitlines()
    try:
        nions = int(lines[0].split()[0])
        _emax, _emin, nedos, efermi = (float(x) for x in lines[5].split()[:4])
        nedos = int(nedos)
        tot = np.array([ln.split() for ln in lines[6 : 6 + nedos]], dtype=float)
    except (IndexError, ValueError) as exc:
        raise RunReadError(f"{p}: not a readable DOSCAR ({exc})") from exc
    if tot.ndim != 2 or tot.shape[0] != nedos:
        raise RunReadError(f"{p}: truncated DOSCAR ({tot.shape[0]} of {nedos} energies)")
    nspin = 2 if tot.shape[1] == 5 else 1
    out: dict[str, Any] = {
        "efermi": efermi,
        "energies": tot[:, 0],
        "total": tot[:, 1 : 1 + nspin].T.copy(),
        "pdos": None,
        "orbitals": None,
    }
    start = 6 + nedos
    blocks = []
    has_sites = any(ln.strip() for ln in lines[start:])
    for _ in range(nions if has_sites else 0):
        chunk = lines[start + 1 : start + 1 + nedos]
        rows = [ln.split() for ln in chunk]
        if len(chunk) < nedos or len({len(r) for r in rows}) != 1:
            raise RunReadError(f"{p}: truncated DOSCAR (site {len(blocks) + 1} incomplete)")
        blocks.append(np.array(rows, dtype=float))
        start += 1 + nedos
    if blocks:
        arr = np.array(blocks)[:, :, 1:]  # (nions, nedos, ncols)
        ncol = arr.shape[-1]
        norb = ncol // nspin
        arr = arr.reshape(nions, nedos, norb, nspin).transpose(0, 3, 2, 1)
        out["pdos"] = np.ascontiguousarray(arr)
        names = {1: ["s"], 3: ["s", "p", "d"], 4: ["s", "p", "d", "f"], 9: _LM9, 16: _LM16}
        out["orbitals"] = names.get(norb, [f"orb{i}" for i in range(norb)])
    return out


#: VASP's orbital column names -> pymatgen's ``Orbital`` names, so labels are the same
#: whichever VASP version (or DOSCAR) they came from.
_ORBITAL_NAMES = {
    "dx2": "dx2_y2",
    "x2-y2": "dx2_y2",
    "fy3x2": "f_3",
    "fxyz": "f_2",
    "fyz2": "f_1",
    "fz3": "f0",
    "fxz2": "f1",
    "fzx2": "f2",
    "fx3": "f3",
}
_LM9 = ["s", "py", "pz", "px", "dxy", "dyz", "dz2", "dxz", "dx2_y2"]
_LM16 = [*_LM9, "f_3", "f_2", "f_1", "f0", "f1", "f2", "f3"]


def _fill_from_doscar(data: RunData, path: Path, *, pdos: bool) -> None:
    try:
        d = read_doscar(path)
    except RunReadError as exc:
        data.problems.append(str(exc))
        return
    if data.efermi is None:
        data.efermi = d["efermi"]
    if data.total_dos is None:
        data.dos_energies, data.total_dos = d["energies"], d["total"]
    if pdos and data.pdos is None and d["pdos"] is not None:
        data.pdos, data.pdos_orbitals = d["pdos"], d["orbitals"]


def read_pdos(run_or_path: RunData | str | Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Site- and orbital-projected DOS, read only when needed.

    Parameters
    ----------
    run_or_path
        A :class:`RunData` from :func:`read_run` (its ``pdos`` is filled in place) or a run
        folder / vasprun.xml / DOSCAR path.

    Returns
    -------
    (pdos, orbitals, energies)
        (nsites, nspin, norb, nedos) states/eV, orbital labels, (nedos,) energies in eV.

    Raises
    ------
    RunReadError
        Neither vasprun.xml nor DOSCAR holds projected DOS (LORBIT not set).
    """
    run = run_or_path if isinstance(run_or_path, RunData) else None
    if run is not None and run.pdos is not None:
        return run.pdos, list(run.pdos_orbitals or []), run.dos_energies
    files = run.files if run is not None else find_run_files(run_or_path)  # type: ignore[arg-type]
    tmp = RunData(path=Path(run.path if run else run_or_path))  # type: ignore[arg-type]
    if "vasprun" in files:
        buf, _ = _open_vasprun(files["vasprun"], keep_partial=True)
        first = buf.find(b"<calculation>")
        head = bytes(buf[: first if first >= 0 else len(buf)])
        ai = _vasprun.section(head, b"<atominfo>", b"</atominfo>")
        nions = len(_vasprun.parse_atominfo(ai)[0]) if ai else 0
        par = _vasprun.section(head, b"<parameters>", b"</parameters>")
        nspin = int(_vasprun.parse_parameters(par).get("ISPIN", 1)) if par else 1
        lay = _vasprun.locate(buf, nions)
        if lay.partial:
            tmp.species = ["X"] * nions
            _read_partial(tmp, buf, lay.partial, nspin)
    if tmp.pdos is None and "doscar" in files:
        _fill_from_doscar(tmp, files["doscar"], pdos=True)
    if tmp.pdos is None and tmp.problems:
        # A projected DOS is there but does not read: say so, never "no projected DOS".
        where = files.get("vasprun") or files.get("doscar") or tmp.path
        raise RunReadError(f"{where}: unreadable projected DOS: {tmp.problems[0]}")
    if tmp.pdos is None:
        raise RunReadError(
            f"{tmp.path}: no projected DOS (vasprun.xml <partial> or DOSCAR site blocks; "
            "VASP writes them with LORBIT = 10 or 11)"
        )
    if run is not None:
        run.pdos, run.pdos_orbitals = tmp.pdos, tmp.pdos_orbitals
        if run.dos_energies is None:
            run.dos_energies = tmp.dos_energies
    return tmp.pdos, list(tmp.pdos_orbitals or []), tmp.dos_energies


#: (path, size, mtime) of a vasprun.xml -> where read_run found its <partial> block: its byte
#: span (plain file), or (-1, number of <partial> tags before it) for a gzipped file.
_PARTIAL_SPANS: dict[tuple[str, int, int], tuple[int, int]] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def open_partial(run: RunData, rows: tuple[int, int] | None = None) -> _partial.PartialIndex | None:
    """The ``<partial>`` block of a run's vasprun.xml, indexed for windowed element sums.

    Only the set headers are looked at: a plain file is memory-mapped and every row stays
    reachable; a gzipped file read by :func:`read_run` in this process is inflated once more
    up to ``</partial>``, keeping only the grid ``rows`` [lo, hi) of each set as they stream
    past (without ``rows``, or for a gzipped file read otherwise, the inflated block is kept
    whole).  None when there is no vasprun.xml ``<partial>`` block or it is not the regular
    layout VASP writes: callers then use :func:`read_pdos`, whose full parse reports what is
    wrong.  Rows are in the grid of ``run.dos_energies``.
    """
    if "vasprun" not in run.files or not run.species or run.dos_energies is None:
        return None
    path = run.files["vasprun"]
    nions, nspin = len(run.species), run.ispin
    try:
        known = _PARTIAL_SPANS.get(_file_key(path))
        if _bytesio.is_gzip(path) and rows is not None and known and known[0] < 0:
            index = _stream_partial(path, known[1], nions, nspin, rows)
        elif not _bytesio.is_gzip(path) and known and known[0] >= 0:
            # Read by pread where read_run found the block: only the bytes asked for.
            fb = _partial.FileBytes(path)
            if fb[known[0] : known[0] + 9] != b"<partial>":
                return None
            index = _partial.index_partial(fb, known, nions, nspin)
        else:
            buf, _ = _open_vasprun(path, keep_partial=True, stop_after=b"</partial>")
            # Where read_run found it in this very file, else walk the landmarks again.
            span = known if known and known[0] >= 0 else None
            if span is None or bytes(buf[span[0] : span[0] + 9]) != b"<partial>":
                span = _vasprun.locate(buf, nions).partial
            if not span:
                return None
            index = _partial.index_partial(buf, span, nions, nspin)
    except RunReadError:
        return None
    if index is None or index.total != len(run.dos_energies):
        return None
    return index


def _stream_partial(
    path: Path, nth: int, nions: int, nspin: int, rows: tuple[int, int]
) -> _partial.PartialIndex | None:
    chunks = _bytesio.iter_gunzip(path)
    try:
        stream = _partial.ByteStream(chunks)
        at = -1
        for _ in range(nth + 1):
            at = stream.find(b"<partial>", at + 1)
            if at < 0:
                return None
            stream.release(at)
        return _partial.index_partial(stream, (at, 1 << 62), nions, nspin, keep_rows=rows)
    finally:
        chunks.close()  # stop inflating: nothing after </partial> is wanted


# --- derived quantities -------------------------------------------------------------------

_GGA_NAMES = {
    "PE": "PBE",
    "PS": "PBESOL",
    "91": "PW91",
    "RP": "RPBE",
    "RE": "REVPBE",
    "AM": "AM05",
    "B3": "B3LYP",
    "CA": "LDA",
    "PZ": "LDA",
    "LDA": "LDA",
}
_VDW = {1: "D2", 10: "D2", 11: "D3", 12: "D3(BJ)", 2: "TS", 20: "TS", 4: "dDsC"}


def functional_label(
    incar: dict[str, Any],
    parameters: dict[str, Any] | None = None,
    potcars: list[str] | None = None,
) -> str | None:
    """Exchange-correlation functional of a run, e.g. "R2SCAN", "SCAN", "PBE", "HSE06".

    The INCAR is trusted first (VASP's OUTCAR and ``<parameters>`` print ``METAGGA = F`` for
    r2SCAN), then the parameters (the vasprun ``<parameters>`` or the OUTCAR echo), then the
    POTCAR family (LEXCH).  Hybrids come from LHFCALC, HFSCREEN and AEXX: "HSE06"
    (HFSCREEN 0.2, AEXX 0.25), "HSE03" (0.3), "PBE0" (no screening, AEXX 0.25), "HF"
    (AEXX 1), else "HYBRID(AEXX=…, HFSCREEN=…)".  A van der Waals correction is appended
    ("SCAN+rVV10", "PBE+D3").

    Returns None ("unknown") rather than a guess when only an OUTCAR is at hand and it cannot
    tell: VASP 5 prints ``METAGGA = F`` in the OUTCAR even for SCAN/r2SCAN runs, so an OUTCAR
    with ``LASPH = T`` (which every meta-GGA run needs) and no INCAR is not labelled PBE.
    """
    params = parameters or {}

    def get(key: str) -> Any:
        return incar.get(key, params.get(key))

    label = None
    metagga = str(get("METAGGA") or "").strip().upper()
    if metagga and metagga not in ("--", "NONE", "F", "FALSE", "0"):
        label = metagga
    elif get("LHFCALC") is True:
        screen = float(get("HFSCREEN") or 0.0)
        aexx = get("AEXX")
        aexx = 0.25 if aexx is None else float(aexx)
        if abs(aexx - 1.0) < 1e-3 and screen == 0:
            label = "HF"
        elif abs(aexx - 0.25) < 1e-3 and abs(screen - 0.2) < 0.02:
            label = "HSE06"
        elif abs(aexx - 0.25) < 1e-3 and abs(screen - 0.3) < 0.02:
            label = "HSE03"
        elif abs(aexx - 0.25) < 1e-3 and screen == 0:
            label = "PBE0"
        else:
            label = f"HYBRID(AEXX={aexx:g}, HFSCREEN={screen:g})"
    else:
        if not incar and get("LASPH") is True and "METAGGA" in params:
            return None  # OUTCAR only, METAGGA = F, LASPH = T: may well be SCAN/r2SCAN
        gga = str(get("GGA") or "").strip().upper()
        if gga and gga != "--":
            label = _GGA_NAMES.get(gga, gga)
        elif potcars:
            fam = potcars[0].split()[0].upper() if potcars[0].split() else ""
            label = "PBE" if "PBE" in fam else ("PW91" if "GGA" in fam else "LDA")
    if label is None:
        return None
    if get("LUSE_VDW") is True and (get("BPARAM") is not None or "SCAN" in label):
        label += "+rVV10" if "SCAN" in label else "+vdW-DF"
    ivdw = get("IVDW")
    if isinstance(ivdw, int) and ivdw in _VDW:
        label += "+" + _VDW[ivdw]
    return label


#: RunData fields the analysis uses, checked for VASP's '****' overflow, NaN and Infinity.
_FINITE_FIELDS = (
    "final_energy",
    "final_energy_sigma0",
    "efermi",
    "total_moment",
    "site_moments",
    "lattice",
    "frac_coords",
    "forces",
    "eigenvalues",
    "occupations",
    "dos_energies",
    "total_dos",
)
_MOMENT_FIELDS = ("site_moments", "total_moment")


def _origin(data: RunData, name: str) -> tuple[Path | None, int | None]:
    """(file, 1-based ionic step) a field was read from, as far as the reader knows."""
    if name in data.origins:
        return data.origins[name]
    order = ("outcar", "oszicar", "vasprun") if name in _MOMENT_FIELDS else ("vasprun", "outcar")
    if name in ("dos_energies", "total_dos", "efermi"):
        order = ("vasprun", "doscar", "outcar")
    if name in ("lattice", "frac_coords"):
        order = ("vasprun", "outcar", "contcar")
    path = next((data.files[k] for k in order if k in data.files), None)
    return path, len(data.ionic_energies) or None


def _check_finite(data: RunData, *, strict: bool) -> list[str]:
    """Messages for fields holding non-finite values (overflow stars are read as NaN).

    Without ``strict`` the field is dropped (set to None), the message is kept in
    ``problems`` and the quantity is listed in ``unavailable``, so nothing downstream uses a
    NaN as a number or a starred energy as zero.
    """
    bad = []
    for name in _FINITE_FIELDS:
        value = getattr(data, name)
        if value is None:
            continue
        arr = np.asarray(value, dtype=float)
        if arr.size == 0 or np.all(np.isfinite(arr)):
            continue
        path, step = _origin(data, name)
        where = f" of ionic step {step}" if step else ""
        what = f"{np.count_nonzero(~np.isfinite(arr))} of {arr.size} values" if arr.size > 1 else ""
        msg = (
            f"{path or data.path}: non-finite or overflowed value ('****', NaN or Infinity) in "
            f"{name}{where}{' (' + what + ')' if what else ''}"
        )
        bad.append(msg)
        if not strict:
            setattr(data, name, None)
            if name == "eigenvalues":
                data.occupations = None
            if name == "final_energy":  # the other energy of a starred step is no better
                data.final_energy_sigma0 = None
            data.unavailable[name] = f"not available ({msg})"
            data.problems.append(msg)
    if bad and not strict:
        data.complete = False  # not usable as-is: keep it out of energy differences
    return bad if strict else []


def _finish(data: RunData, complete_flags: list[bool], scf: list[float]) -> None:
    data.parameters.update({k: v for k, v in _DEFAULTS.items() if k not in data.parameters})
    params = data.parameters
    nsw = int(params.get("NSW") or 0)
    params.setdefault("IBRION", -1 if nsw <= 1 else 0)
    params.setdefault("EDIFFG", 10 * float(params["EDIFF"]))
    params.setdefault("ISIF", 0 if params["IBRION"] == 0 else 2)
    data.functional = functional_label(data.incar, params, data.potcars)

    if data.total_moment is None and data.occupations is not None and data.ispin == 2:
        w = data.kpoint_weights
        occ = data.occupations
        if w is not None and len(w) == occ.shape[1]:
            wn = np.asarray(w) / np.sum(w)
            data.total_moment = float(np.sum((occ[0] - occ[1]).sum(axis=1) * wn))

    data.complete = bool(complete_flags) and all(complete_flags)
    if not complete_flags:
        data.problems.append(
            f"{data.path}: neither vasprun.xml nor OUTCAR: cannot tell whether the run finished"
        )
    data.electronic_converged = data.complete and _electronic_ok(data, scf)
    data.ionic_converged = data.complete and _ionic_ok(data)
    if data.final_energy is None:
        data.problems.append(f"{data.path}: no final energy found")


def _electronic_ok(data: RunData, scf: list[float]) -> bool:
    if not data.electronic_steps:
        data.problems.append(f"{data.path}: no electronic steps recorded")
        return False
    nelm = int(data.parameters["NELM"])
    nsc = data.electronic_steps[-1]
    if nsc >= nelm:
        data.problems.append(
            f"{data.path}: electronically unconverged: the final ionic step used {nsc} SCF "
            f"steps = NELM ({nelm})"
        )
        return False
    ediff = float(data.parameters["EDIFF"])
    if len(scf) >= 2:
        change = abs(scf[-1] - scf[-2])
        # vasprun prints energies to 1e-8 eV; allow that rounding on top of EDIFF.
        if change > ediff + 2e-8:
            data.problems.append(
                f"{data.path}: electronically unconverged: last SCF energy change "
                f"{change:.2e} eV > EDIFF {ediff:g} eV"
            )
            return False
    return True


def _ionic_ok(data: RunData) -> bool:
    params = data.parameters
    nsw = int(params.get("NSW") or 0)
    ibrion = int(params.get("IBRION", -1))
    nsteps = len(data.ionic_energies)
    if nsw <= 1 or ibrion == -1:
        return True
    if ibrion == 0:  # MD: "converged" means all NSW steps ran
        return nsteps == nsw
    ediffg = float(params.get("EDIFFG") or 0.0)
    if ediffg == 0 and ibrion in (1, 2, 3):
        return nsteps == nsw
    if nsteps < nsw:
        return True
    if ediffg < 0 and data.forces is not None and len(data.forces):
        fmax = float(np.max(np.linalg.norm(data.forces, axis=1)))
        if fmax <= abs(ediffg):
            return True
    data.problems.append(
        f"{data.path}: ionically unconverged: the relaxation used all NSW = {nsw} steps "
        f"without reaching EDIFFG = {ediffg:g}"
    )
    return False
