"""OUTCAR, OSZICAR and stdout in the layout VASP 5.4/6 prints (the parts parsers read)."""

# Fixed-width VASP fields are written with printf-style formats on purpose: one row format
# repeated over a block, ``(fmt * nrows) % values``, is the fast vectorised path.
# ruff: noqa: UP031

from __future__ import annotations

import datetime as _dt
import math
from typing import IO

import numpy as np

from polaronflow.analysis.rundata import SYNTHETIC_MARKER
from polaronflow.emulator.inputs import JobInputs
from polaronflow.emulator.physics import RunModel, energy_terms, is_truthy
from polaronflow.emulator.vasprun import VASP_VERSION, potcar_title, rows

_RULE = "-" * 104
# OUTCAR labels of the energy terms (VASP 6); EXHF is zero without Hartree-Fock.
_TERM_LABELS = (
    ("alpha Z        PSCENC", "alphaZ"),
    ("Ewald energy   TEWEN ", "ewald"),
    ("-Hartree energ DENC  ", "hartreedc"),
    ("-exchange      EXHF  ", "_exhf"),
    ("-V(xc)+E(xc)   XCENC ", "XCdc"),
)


def fortran_e(x: float, digits: int, lead_zero: bool = True) -> str:
    """Fortran ``E`` edit descriptor: mantissa in [0.1, 1), e.g. ``-.28218515E+02``."""
    if x == 0 or not math.isfinite(x):
        mant, exp = 0.0, 0
    else:
        exp = math.floor(math.log10(abs(x))) + 1
        mant = abs(x) / 10**exp
        if round(mant, digits) >= 1.0:
            mant /= 10
            exp += 1
    body = f"{mant:.{digits}f}"
    if not lead_zero:
        body = body[1:]
    sign = "-" if x < 0 else ("" if lead_zero else " ")
    return f"{sign}{body}E{'+' if exp >= 0 else '-'}{abs(exp):02d}"


def oszicar_lines(
    run: RunModel, algo_label: str, death: tuple[int, int] | None = None
) -> list[str]:
    """OSZICAR lines (header carries the synthetic marker at its end).

    ``death = (ionic step index, SCF steps done)``: the lines a run stopped there leaves.
    """
    out = [
        "       N       E                     dE             d eps       ncg     rms"
        f"          rms(c)    {SYNTHETIC_MARKER}"
    ]
    prev_final = None
    for n, step in enumerate(run.steps, start=1):
        prev = 0.0
        dying = death is not None and n - 1 == death[0]
        for k, e in enumerate(step.scf_energies, start=1):
            if dying and k > death[1]:
                return out
            de = e - prev
            rms = max(abs(de) ** 0.5 * 0.1, 1e-4)
            line = "%s%4d    %19s   %12s   %12s%6d   %s" % (
                algo_label,
                k,
                fortran_e(e, 12).rjust(19),
                fortran_e(de, 5),
                fortran_e(de * 1.1, 5),
                run.natoms * 3 % 997 + 24,
                fortran_e(rms, 3),
            )
            if k > 4:
                line += "    " + fortran_e(rms * 0.5, 3)
            out.append(line)
            prev = e
        free = step.energy + run.eentropy / 2
        d_e = free - (prev_final if prev_final is not None else 0.0)
        line = "%4d F= %s E0= %s  d E =%s" % (
            n,
            fortran_e(free, 8, False),
            fortran_e(step.energy, 8, False),
            fortran_e(d_e, 6, False),
        )
        if run.ispin == 2:
            line += "  mag=%11.4f" % run.total_moment
        out.append(line)
        prev_final = free
    return out


def _algo_label(job: JobInputs) -> str:
    algo = str(job.incar.get("ALGO", "Normal")).strip()[:1].lower()
    return {"a": "CG :", "c": "CG :", "f": "RMM:", "v": "RMM:"}.get(algo, "DAV:")


def write_oszicar(
    fh: IO[str], job: JobInputs, run: RunModel, death: tuple[int, int] | None = None
) -> None:
    """Write OSZICAR (cut at ``death``, see :func:`oszicar_lines`)."""
    fh.write("\n".join(oszicar_lines(run, _algo_label(job), death)) + "\n")


def _table(title: str, values: np.ndarray) -> str:
    """A "total charge" / "magnetization (x)" table with s, p, d and tot columns."""
    tot = values.sum(axis=1)
    data = np.column_stack([np.arange(1, len(values) + 1), values, tot])
    body = rows("%5d%13.3f%8.3f%8.3f%8.3f\n", data)
    sums = values.sum(axis=0)
    return (
        f" {title}\n \n# of ion       s       p       d       tot\n"
        + "-" * 42
        + "\n"
        + body
        + "-" * 50
        + "\n"
        + "tot%15.3f%8.3f%8.3f%8.3f\n" % (*sums, tot.sum())
        + " \n\n\n"
    )


def _eigen_listing(job: JobInputs, run: RunModel) -> str:
    parts = []
    for s in range(run.ispin):
        if run.ispin == 2:
            parts.append(f" spin component {s + 1}\n\n")
        for k, kp in enumerate(job.kpoints):
            parts.append(" k-point %5d :   %10.4f%10.4f%10.4f\n" % (k + 1, *kp))
            parts.append("  band No.  band energies     occupation \n")
            occ = run.occupations[s, k] * (1 if run.ispin == 2 else 2)
            data = np.column_stack([np.arange(1, run.nbands + 1), run.eigenvalues[s, k], occ])
            parts.append(rows("%7d%13.4f%13.5f\n", data))
            parts.append("\n")
    return "".join(parts)


def _basis_block(lattice: np.ndarray, encut: float) -> str:
    """The "direct lattice vectors / reciprocal lattice vectors" block (ASE reads the cell)."""
    recip = np.linalg.inv(lattice).T
    vol = abs(np.linalg.det(lattice))
    out = "  energy-cutoff  :  %10.2f\n  volume of cell :  %10.2f\n" % (encut, vol)
    out += "      direct lattice vectors                 reciprocal lattice vectors\n"
    out += rows("  %14.9f%13.9f%13.9f%16.9f%13.9f%13.9f\n", np.hstack([lattice, recip]))
    lengths = np.concatenate([np.linalg.norm(lattice, axis=1), np.linalg.norm(recip, axis=1)])
    out += "\n  length of vectors\n"
    out += "  %14.9f%13.9f%13.9f%16.9f%13.9f%13.9f\n" % tuple(lengths)
    return out


#: Synthetic average electrostatic potentials at the cores (eV) and test-charge radii (Å).
_CORE_POTENTIAL = {"W": (-48.6, 1.16), "O": (-70.9, 0.72), "Mg": (-38.2, 0.93), "H": (-25.3, 0.5)}


def _core_potential_block(job: JobInputs, run: RunModel) -> str:
    """The "average (electrostatic) potential at core" block (pymatgen reads it).

    A W carrying a polaron holds an extra electron: its core potential is shallower by
    ~0.5 eV per μB, so the polaron shows up here as in a real run.
    """
    species = np.asarray(job.species)
    base = np.array([_CORE_POTENTIAL.get(el, (-40.0, 1.0))[0] for el in species])
    # small site-to-site spread from the site index, deterministic
    spread = 0.05 * np.sin(np.arange(len(species)) * 1.7)
    pot = base + spread + 0.5 * np.abs(run.site_moments)
    radii = "".join("%8.4f" % _CORE_POTENTIAL.get(el, (0, 1.0))[1] for el in job.block_elements)
    out = "\n average (electrostatic) potential at core\n"
    out += f"  the test charge radii are   {radii}\n"
    out += "  (the norm of the test charge is              1.0000)\n"
    for start in range(0, len(pot), 5):
        chunk = range(start, min(start + 5, len(pot)))
        out += "".join("%8d%9.4f" % (i + 1, pot[i]) for i in chunk) + "\n"
    return out + " \n \n \n"


def write_outcar(
    fh: IO[str],
    job: JobInputs,
    run: RunModel,
    masses: list[float],
    nedos: int,
    truncated: bool = False,
    error_text: str | None = None,
    death: tuple[int, int] | None = None,
) -> None:
    """Write OUTCAR (header, parameters, per-step energies, tables, forces, timing).

    ``death = (ionic step index, SCF steps done)``: stop there, print ``error_text`` (VASP
    6 writes its error boxes to OUTCAR as well as stdout) and write nothing after it.
    """
    w = fh.write
    now = _dt.datetime.now()
    incar = job.incar
    natoms = job.natoms
    w(
        f" {SYNTHETIC_MARKER}: written by the polaronflow mock-VASP emulator; the numbers are "
        "synthetic, not VASP results\n"
    )
    w(f" vasp.{VASP_VERSION} (polaronflow mock-VASP emulator) complex\n  \n")
    w(f" executed on             polaronflow date {now:%Y.%m.%d  %H:%M:%S}\n")
    w(" running on    1 total cores\n")
    w(" distrk:  each k-point on    1 cores,    1 groups\n")
    w(" distr:  one band on NCORES_PER_BAND=   1 cores,    1 groups\n\n\n")
    w(_RULE + "\n\n\n INCAR:\n")
    for sym in job.potcar_symbols:
        w(f" POTCAR:    {potcar_title(sym):<38s}\n")
    for sym, m, z in zip(job.potcar_symbols, masses, job.zvals, strict=True):
        w(f" POTCAR:    {potcar_title(sym):<38s}\n")
        w(f"   TITEL  = {potcar_title(sym)}\n")
        w(("   POMASS = %8.3f; ZVAL   = %8.3f    mass and valenz" % (m, z)).ljust(80) + "\n")
    formula = " ".join(
        f"{el}{n}" for el, n in zip(job.block_elements, job.block_counts, strict=True)
    )
    w(f" \n POSCAR: {formula}\n  positions in direct lattice\n  No initial velocities read in\n")
    w("\n\n" + _RULE + "\n\n\n")
    nk = len(job.kpoints)
    ngx = [max(8, int(np.ceil(np.linalg.norm(v) * 3.2 / 4) * 4)) for v in job.lattice]
    w(" Dimension of arrays:\n")
    w(
        "   k-points           NKPTS = %6d   k-points in BZ     NKDIM = %6d   number of bands"
        "    NBANDS= %6d\n" % (nk, nk, run.nbands)
    )
    w("   number of dos      NEDOS = %6d   number of ions     NIONS = %6d\n" % (nedos, natoms))
    w("   total plane-waves  NPLWV = %6d\n" % (ngx[0] * ngx[1] * ngx[2]))
    w("   dimension x,y,z NGX = %5d NGY =%5d NGZ =%5d\n" % tuple(ngx))
    w("   dimension x,y,z NGXF= %5d NGYF=%5d NGZF=%5d\n" % tuple(2 * g for g in ngx))
    w("   ions per type =  " + "".join("%4d" % n for n in job.block_counts) + "\n\n")
    w(f" SYSTEM =  {incar.get('SYSTEM', 'unknown system')}\n POSCAR =  {formula}\n\n")
    w(" Startparameter for this run:\n")
    w("   NWRITE =      2    write-flag & timer\n")
    w(
        "   PREC   = %6s    normal or accurate (medium, high low for compatibility)\n"
        % str(incar.get("PREC", "normal")).lower()[:6]
    )
    w("   ISTART =%7d    job   : 0-new  1-cont  2-samecut\n" % int(incar.get("ISTART", 0)))
    w("   ICHARG =%7d    charge: 1-file 2-atom 10-const\n" % int(incar.get("ICHARG", 2)))
    w("   ISPIN  =%7d    spin polarized calculation?\n" % run.ispin)
    w("   LNONCOLLINEAR =      F non collinear calculations\n")
    w("   LSORBIT =      F    spin-orbit coupling\n")
    w(
        "   LASPH  =      %s    aspherical Exc in radial PAW\n"
        % ("T" if is_truthy(incar.get("LASPH", False)) else "F")
    )
    w("\n Electronic Relaxation 1\n")
    w("   ENCUT  = %6.1f eV\n" % float(incar.get("ENCUT", 400.0)))
    w(
        "   NELM   = %6d;   NELMIN=%3d; NELMDL=%3d     # of ELM steps \n"
        % (int(incar.get("NELM", 60)), int(incar.get("NELMIN", 2)), int(incar.get("NELMDL", -5)))
    )
    w(
        "   EDIFF  = %s   stopping-criterion for ELM\n"
        % fortran_e(float(incar.get("EDIFF", 1e-4)), 1)
    )
    w(" Ionic relaxation\n")
    ediffg = float(incar.get("EDIFFG", 10 * float(incar.get("EDIFF", 1e-4))))
    w("   EDIFFG = %s   stopping-criterion for IOM\n" % fortran_e(ediffg, 1, False))
    w("   NSW    = %6d    number of steps for IOM\n" % int(incar.get("NSW", 0)))
    w("   IBRION = %6d    ionic relax: 0-MD 1-quasi-New 2-CG\n" % int(incar.get("IBRION", -1)))
    w("   ISIF   = %6d    stress and relaxation\n" % int(incar.get("ISIF", 2)))
    w("   POTIM  = %6.4f    time-step for ionic-motion\n" % float(incar.get("POTIM", 0.5)))
    w("\n  Mass of Ions in am\n   POMASS = " + "".join("%6.2f" % m for m in masses) + "\n")
    w("  Ionic Valenz\n   ZVAL   = " + "".join("%6.2f" % z for z in job.zvals) + "\n")
    w("   NELECT = %12.4f    total number of electrons\n" % job.nelect)
    w("   NUPDOWN= %12.4f    fix difference up-down\n\n" % float(incar.get("NUPDOWN", -1.0)))
    w(" DOS related values:\n")
    w(
        "   ISMEAR = %5d;   SIGMA  = %6.2f  broadening in eV -4-tet -1-fermi 0-gaus\n\n"
        % (int(incar.get("ISMEAR", 1)), float(incar.get("SIGMA", 0.2)))
    )
    if is_truthy(incar.get("LDAU", False)):
        ntyp = len(job.block_elements)
        w(" LDA+U is selected, type is set to LDAUTYPE = %2d\n" % int(incar.get("LDAUTYPE", 2)))
        w(
            "   angular momentum for each species LDAUL = "
            + "".join("%5d" % int(x) for x in incar.get("LDAUL", [-1] * ntyp))
            + "\n"
        )
        w(
            "   U (eV)           for each species LDAUU = "
            + "".join("%5.1f" % float(x) for x in incar.get("LDAUU", [0.0] * ntyp))
            + "\n"
        )
        w(
            "   J (eV)           for each species LDAUJ = "
            + "".join("%5.1f" % float(x) for x in incar.get("LDAUJ", [0.0] * ntyp))
            + "\n\n"
        )
    w(" Write flags\n")
    w(
        "   LWAVE        =      %s    write WAVECAR\n"
        % ("T" if is_truthy(incar.get("LWAVE", True)) else "F")
    )
    w(
        "   LCHARG       =      %s    write CHGCAR\n"
        % ("T" if is_truthy(incar.get("LCHARG", True)) else "F")
    )
    w(
        "   LORBIT       = %6d    0 simple, 1 ext, 2 COOP (PROOUT), +10 PAW based schemes\n\n"
        % int(incar.get("LORBIT", 0) or 0)
    )
    w(" Exchange correlation treatment:\n")
    w("   GGA     =    %s    GGA type\n" % str(incar.get("GGA", "--")).strip().upper()[:2])
    metagga = incar.get("METAGGA")
    w("   METAGGA = %s    meta-GGA type\n" % (str(metagga).strip() if metagga else "F"))
    w("\n\n" + _RULE + "\n\n\n")
    w(_basis_block(job.lattice, float(incar.get("ENCUT", 400.0))))
    w("\n\n \n")
    recip = np.linalg.inv(job.lattice).T
    weights = np.asarray(job.kweights, dtype=float)
    weights = weights / weights.sum()
    cart_k = job.kpoints @ recip  # in units of 2pi/SCALE (SCALE = 1)
    kcomment = "emulator k-points"
    w(f" k-points in units of 2pi/SCALE and weight: {kcomment}\n")
    w(rows("%13.8f%12.8f%12.8f%12.3f\n", np.column_stack([cart_k, weights])))
    w(" \n")
    w(f" k-points in reciprocal lattice and weights: {kcomment}\n")
    w(rows("%13.8f%12.8f%12.8f%12.3f\n", np.column_stack([job.kpoints, weights])))
    w(" \n position of ions in fractional coordinates (direct lattice) \n")
    w(rows("%13.8f%12.8f%12.8f\n", job.frac_coords))
    w(" \n position of ions in cartesian coordinates  (Angst):\n")
    w(rows("%13.8f%12.8f%12.8f\n", job.frac_coords @ job.lattice))
    w(" \n\n\n" + _RULE + "\n\n\n")
    for k, kp in enumerate(job.kpoints):
        npw = int(ngx[0] * ngx[1] * ngx[2] * 0.06) + (k * 7) % 13
        w(" k-point %2d :   %6.4f%7.4f%7.4f  plane waves: %7d\n" % (k + 1, *kp, npw))
    w(
        "\n maximum and minimum number of plane-waves per node : %9d %8d\n\n"
        % (int(ngx[0] * ngx[1] * ngx[2] * 0.06) + 12, int(ngx[0] * ngx[1] * ngx[2] * 0.06))
    )
    w(_RULE + "\n\n\n")

    lorbit = int(incar.get("LORBIT", 0) or 0)
    nelect = job.nelect
    for n_step, step in enumerate(run.steps, start=1):
        dying = death is not None and n_step - 1 == death[0]
        for k, e in enumerate(step.scf_energies, start=1):
            if dying and k > death[1]:
                break
            w("\n\n" + "-" * 39 + " Iteration %6d(%4d)  " % (n_step, k) + "-" * 39 + "\n\n\n")
            w("    POTLOK:  cpu time    0.1000: real time    0.1000\n")
            w("    --------------------------------------------\n")
            w("      LOOP:  cpu time    1.0000: real time    1.0000\n\n")
            w(" eigenvalue-minimisations  : %5d\n" % (run.nbands * 2))
            w(
                " total energy-change (2. order) :%s  (%s)\n"
                % (
                    fortran_e(e - (step.scf_energies[k - 2] if k > 1 else 0.0), 7),
                    fortran_e(e * 0.01, 7),
                )
            )
            w(" number of electron %15.7f magnetization %15.7f\n" % (nelect, run.total_moment))
            w(
                " augmentation part  %15.7f magnetization %15.7f\n\n"
                % (nelect * 0.2, run.total_moment * 0.8)
            )
            w(" Free energy of the ion-electron system (eV)\n")
            w("  ---------------------------------------------------\n")
            e_fr, e_wo = e + run.eentropy / 2, e - run.eentropy / 2
            t = energy_terms(job.species, e_fr, run.eentropy, k)
            for label, name in _TERM_LABELS:
                w("  %s =  %17.8f\n" % (label, t.get(name, 0.0)))
            w("  PAW double counting   =  %17.8f %17.8f\n" % (t["pawpsdc"], t["pawaedc"]))
            w("  entropy T*S    EENTRO =  %17.8f\n" % t["eentropy"])
            w("  eigenvalues    EBANDS =  %17.8f\n" % t["bandstr"])
            w("  atomic energy  EATOM  =  %17.8f\n" % t["atom"])
            w("  ---------------------------------------------------\n")
            w("  free energy    TOTEN  =  %17.8f eV\n\n" % e_fr)
            w("  energy without entropy =  %17.8f  energy(sigma->0) =  %17.8f\n\n\n" % (e_wo, e))
            w(_RULE + "\n\n\n")
        if dying:
            if error_text:
                w(error_text + "\n")
            return
        w(_core_potential_block(job, run))
        w(
            "\n\n E-fermi : %8.4f     XC(G=0): %8.4f     alpha+bet :%8.4f\n\n\n"
            % (run.efermi, -10.2, -12.1)
        )
        w(_eigen_listing(job, run))
        w("\n" + _RULE + "\n\n\n")
        if len(step.scf_energies) < int(incar.get("NELM", 60)):
            w(
                "------------------------ aborting loop because EDIFF is reached "
                "----------------------------------------\n\n\n"
            )
        if lorbit >= 10 and run.ispin == 2:
            w(_table("total charge     ", run.charges))
            w(_table("magnetization (x)", run.moment_orbitals))
        elif lorbit >= 10:
            w(_table("total charge     ", run.charges))
        vol = abs(np.linalg.det(step.lattice))
        kb = np.diag(step.stress)
        ev = kb * vol / 1602.1766
        w("  FORCE on cell =-STRESS in cart. coord.  units (eV):\n")
        w("  Direction    XX          YY          ZZ          XY          YZ          ZX\n")
        w("  " + "-" * 86 + "\n")
        w("  Total  %12.5f%12.5f%12.5f%12.5f%12.5f%12.5f\n" % (*ev, 0.0, 0.0, 0.0))
        w("  in kB  %12.5f%12.5f%12.5f%12.5f%12.5f%12.5f\n" % (*kb, 0.0, 0.0, 0.0))
        w("  external pressure = %11.2f kB  Pullay stress = %11.2f kB\n\n\n" % (kb.mean(), 0.0))
        w(" VOLUME and BASIS-vectors are now :\n " + "-" * 77 + "\n")
        w(_basis_block(step.lattice, float(incar.get("ENCUT", 400.0))))
        w("\n\n")
        cart = step.frac_coords @ step.lattice
        w(" POSITION                                       TOTAL-FORCE (eV/Angst)\n")
        w(" " + "-" * 83 + "\n")
        w(
            rows(
                " %12.5f %12.5f %12.5f   %14.6f %13.6f %13.6f\n",
                np.column_stack([cart, step.forces]),
            )
        )
        w(" " + "-" * 83 + "\n")
        w(
            "    total drift:                          %14.6f%14.6f%14.6f\n\n\n"
            % tuple(step.forces.sum(axis=0))
        )
        w(_RULE + "\n\n\n\n")
        w("  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)\n")
        w("  ---------------------------------------------------\n")
        ent = run.eentropy
        w("  free  energy   TOTEN  = %18.8f eV\n\n" % (step.energy + ent / 2))
        w(
            "  energy  without entropy=%18.8f  energy(sigma->0) =%18.8f\n \n\n\n"
            % (step.energy - ent / 2, step.energy)
        )
        w(_RULE + "\n\n\n")
    if run.relaxation and run.ionic_converged:
        w("\n  \n reached required accuracy - stopping structural energy minimisation\n")
    if truncated:
        return
    if lorbit >= 10:
        w(_table("total charge     ", run.charges))
        if run.ispin == 2:
            w(_table("magnetization (x)", run.moment_orbitals))
    cpu = 0.5 * natoms * sum(len(s.scf_energies) for s in run.steps) / 10
    w("  \n  \n General timing and accounting informations for this job:\n")
    w(" ========================================================\n  \n")
    w("                  Total CPU time used (sec): %12.3f\n" % cpu)
    w("                            User time (sec): %12.3f\n" % (cpu * 0.97))
    w("                          System time (sec): %12.3f\n" % (cpu * 0.03))
    w("                         Elapsed time (sec): %12.3f\n  \n" % (cpu * 1.02))
    w("                   Maximum memory used (kb):%12.0f.\n" % (natoms * 4000.0))
    w("                   Average memory used (kb):           N/A\n  \n")
    w("                          Minor page faults: %12d\n" % 10000)
    w("                          Major page faults: %12d\n" % 0)
    w("                 Voluntary context switches: %12d\n" % 100)


def stdout_text(
    job: JobInputs,
    run: RunModel,
    error_text: str | None,
    truncated: bool,
    death: tuple[int, int] | None = None,
) -> str:
    """What VASP prints to stdout (custodian's VaspErrorHandler reads it)."""
    lines = [
        f" {SYNTHETIC_MARKER}: polaronflow mock-VASP emulator (synthetic outputs)",
        " running on    1 total cores",
        " distrk:  each k-point on    1 cores,    1 groups",
        " distr:  one band on    1 cores,    1 groups",
        f" vasp.{VASP_VERSION} (polaronflow mock-VASP emulator) complex",
        " POSCAR found type information on POSCAR " + " ".join(job.block_elements),
        f" POSCAR found :  {len(job.block_elements)} types and {job.natoms:7d} ions",
        " entering main loop",
    ]
    osz = oszicar_lines(run, _algo_label(job), death)
    lines.append(osz[0].replace(f"    {SYNTHETIC_MARKER}", ""))
    lines += osz[1:]
    if error_text:
        lines.append(error_text)
    if death is None and not truncated and is_truthy(job.incar.get("LWAVE", True)):
        lines.append(" writing wavefunctions")
    return "\n".join(lines) + "\n"
