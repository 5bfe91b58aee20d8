"""Run the emulator in a job folder, and write production-size runs for benchmarks."""

# Fixed-width VASP fields are written with printf-style formats on purpose: one row format
# repeated over a block, ``(fmt * nrows) % values``, is the fast vectorised path.
# ruff: noqa: UP031

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from polaronflow.analysis.rundata import SYNTHETIC_MARKER
from polaronflow.emulator.faults import (
    ERROR_TEXT,
    FATAL,
    active_faults,
    death_point,
    requested_faults,
)
from polaronflow.emulator.inputs import JobInputs, read_job
from polaronflow.emulator.outcar import stdout_text, write_oszicar, write_outcar
from polaronflow.emulator.physics import RunModel, _seed, build_run, classify, is_truthy
from polaronflow.emulator.scenario import FaultSpec, Scenario, load_scenario
from polaronflow.emulator.state import ElectronicState
from polaronflow.emulator.vasprun import dos_grid, write_vasprun

SCENARIO_ENV = "POLARONFLOW_EMULATOR_SCENARIO"
_BUFFER = 1 << 20


def _masses(job: JobInputs) -> list[float]:
    from pymatgen.core import Element

    return [float(Element(el).atomic_mass) for el in job.block_elements]


def _cut_vasprun(path: Path, death: tuple[int, int]) -> None:
    """Cut vasprun.xml where a run stopped at ``death`` leaves it (VASP writes as it goes).

    The file keeps the completed ionic steps and the SCF steps done in the step that died,
    then stops part-way through the next line, as a killed job's buffered write does.
    """
    text = path.read_text()
    step, scf = death
    start = -1
    for _ in range(step + 1):
        start = text.find("<calculation>", start + 1)
    if start < 0:
        start = text.find("<calculation>")
    pos = text.find("\n", start) + 1
    for _ in range(scf):
        nxt = text.find("</scstep>", pos)
        if nxt < 0:
            break
        pos = text.find("\n", nxt) + 1
    cut = min(pos + 37, len(text) - 1)
    with open(path, "r+") as fh:
        fh.truncate(len(text[:cut].encode()))


def _cut_vasprun_at_end(path: Path, rng: np.random.Generator) -> None:
    """Cut vasprun.xml in its final eigenvalue/DOS part: every ionic step looks complete."""
    text = path.read_text()
    start = text.rfind("<eigenvalues>")
    start = start if start > 0 else int(0.6 * len(text))
    cut = int(start + rng.uniform(0.05, 0.9) * (len(text) - start))
    with open(path, "r+") as fh:
        fh.truncate(len(text[:cut].encode()))


def _write_contcar(path: Path, job: JobInputs, run: RunModel, step: int = -1) -> None:
    final = run.steps[step]
    lines = [
        f"{SYNTHETIC_MARKER} emulator CONTCAR: {job.poscar_comment}".strip()[:200],
        "   1.00000000000000",
    ]
    lines += ["  %21.16f%21.16f%21.16f" % tuple(v) for v in final.lattice]
    lines.append("   " + "".join("%-5s" % el for el in job.block_elements))
    lines.append("".join("%6d" % n for n in job.block_counts))
    if job.selective_dynamics is not None:
        lines.append("Selective dynamics")
    lines.append("Direct")
    for i, f in enumerate(final.frac_coords):
        row = "  %19.16f  %19.16f  %19.16f" % tuple(f)
        if job.selective_dynamics is not None:
            row += "".join("   T" if flag else "   F" for flag in job.selective_dynamics[i])
        lines.append(row)
    lines.append("")
    lines += ["  %15.8E  %15.8E  %15.8E" % (0.0, 0.0, 0.0)] * job.natoms
    path.write_text("\n".join(lines) + "\n")


def _write_chgcar(path: Path, job: JobInputs, run: RunModel) -> None:
    """A small but valid CHGCAR: uniform charge, spin density on the polaron sites."""
    final = run.steps[-1]
    grid = (12, 12, 12)
    head = [f"{SYNTHETIC_MARKER} emulator CHGCAR (coarse synthetic grid)", "   1.00000000000000"]
    head += ["  %12.6f%12.6f%12.6f" % tuple(v) for v in final.lattice]
    head.append("   " + "".join("%-5s" % el for el in job.block_elements))
    head.append("".join("%6d" % n for n in job.block_counts))
    head.append("Direct")
    head += ["  %10.6f%10.6f%10.6f" % tuple(f) for f in final.frac_coords]
    n = np.prod(grid)
    vol = abs(np.linalg.det(final.lattice))
    rho = np.full(n, job.nelect)  # VASP stores rho * volume; the mean is the electron count
    mesh = np.stack(np.meshgrid(*[np.arange(g) / g for g in grid], indexing="ij"), -1)
    mesh = mesh.transpose(2, 1, 0, 3).reshape(-1, 3)  # x fastest, as VASP writes
    spin = np.zeros(n)
    for site in run.polaron_sites:
        d = mesh - final.frac_coords[site]
        d -= np.round(d)
        r2 = np.sum((d @ final.lattice) ** 2, axis=1)
        blob = np.exp(-r2 / 2.0)
        spin += run.site_moments[site] * blob / blob.mean()
    # The moment outside the polaron spheres (tails, O, interstitial) spread evenly, so the
    # spin density integrates to the total moment, as VASP's does.
    spin += run.total_moment - spin.mean()
    del vol

    def block(values: np.ndarray) -> str:
        values = np.asarray(values, dtype=float)
        full = len(values) // 5 * 5
        text = ((" %17.11E" * 5 + "\n") * (full // 5)) % tuple(values[:full])
        rest = values[full:]
        if len(rest):
            text += ("".join(" %17.11E" for _ in rest) % tuple(rest)) + "\n"
        return text

    parts = ["\n".join(head) + "\n\n", "%5d%5d%5d\n" % grid, block(rho)]
    if run.ispin == 2:
        parts += ["%5d%5d%5d\n" % grid, block(spin)]
    path.write_text("".join(parts))


def run_emulator(
    directory: str | Path = ".",
    scenario: str | Path | Scenario | None = None,
) -> RunModel:
    """Emulate a VASP run in ``directory``: read its inputs, write its outputs.

    Writes vasprun.xml, OUTCAR, OSZICAR, CONTCAR, IBZKPT-free stdout text (returned via
    ``vasp.out`` when run as a command), EIGENVAL-free DOS in vasprun only, and WAVECAR/CHGCAR
    stand-ins when LWAVE/LCHARG ask for them. Every file carries the synthetic marker.

    Parameters
    ----------
    directory
        The job folder (INCAR, POSCAR, POTCAR or POTCAR.spec, optional KPOINTS).
    scenario
        Scenario name, YAML path or object; default: ``$POLARONFLOW_EMULATOR_SCENARIO`` or
        ``paper_like``.

    Returns
    -------
    RunModel
        The numbers written (for tests).
    """
    directory = Path(directory)
    scen = load_scenario(scenario or os.environ.get(SCENARIO_ENV) or None)
    job = read_job(directory)
    # VASP opens (and so empties) OUTCAR, OSZICAR and vasprun.xml as it starts. A custodian
    # monitor polling them meanwhile (LargeSigmaHandler reads OUTCAR) must not see the
    # previous run's, or it corrects an error that no longer exists, again and again.
    for name in ("OUTCAR", "OSZICAR", "vasprun.xml"):
        if (directory / name).is_file():
            (directory / name).write_text("")
    _, system, _ = classify(job, scen)
    faults = active_faults(directory, requested_faults(directory, scen, system, job.u_on_w))
    kinds = {f.kind for f in faults}
    run = build_run(job, scen, faults)
    fatal = next((f for f in faults if f.kind in FATAL), None)
    if fatal is None and run.too_few_bands:
        # the INCAR's NBANDS cannot hold the electrons: VASP warns, custodian stops it
        fatal = FaultSpec(kind="too_few_bands")
    death = None
    if fatal is not None:
        rng = np.random.default_rng([_seed(job), FATAL.index(fatal.kind)])
        scf_counts = [len(s.scf_energies) for s in run.steps]
        death = death_point(fatal.kind, len(run.steps), scf_counts, run.relaxation, rng, spec=fatal)
        if death is None:
            run.notes.append(f"fault {fatal.kind!r} does not apply to this run: ignored")
    error = ERROR_TEXT[fatal.kind] if (fatal is not None and death is not None) else None
    error = error or None  # a kill prints nothing
    truncated = "truncated" in kinds and death is None
    masses = _masses(job)
    nedos = len(dos_grid(run, job)[0])
    with open(directory / "vasprun.xml", "w", buffering=_BUFFER) as fh:
        write_vasprun(fh, job, run, masses, seed=_seed(job))
    if death is not None:
        _cut_vasprun(directory / "vasprun.xml", death)
    elif truncated:
        _cut_vasprun_at_end(directory / "vasprun.xml", np.random.default_rng(_seed(job)))
    with open(directory / "OUTCAR", "w", buffering=_BUFFER) as fh:
        write_outcar(
            fh, job, run, masses, nedos, truncated=truncated, error_text=error, death=death
        )
    with open(directory / "OSZICAR", "w") as fh:
        write_oszicar(fh, job, run, death)
    if death is None:
        _write_contcar(directory / "CONTCAR", job, run)
    elif death[0] > 0:
        # VASP rewrites CONTCAR after each completed ionic step
        _write_contcar(directory / "CONTCAR", job, run, step=death[0] - 1)
    else:
        # killed in the first ionic step: the CONTCAR VASP opened is still empty
        (directory / "CONTCAR").write_text("")
    stopped = truncated or death is not None
    # WAVECAR and CHGCAR are written at the end of a run: a stopped run leaves none (an old
    # WAVECAR copied in for the start stays as it was)
    if is_truthy(job.incar.get("LWAVE", True)) and not stopped:
        state = ElectronicState(
            species=list(job.species),
            ispin=run.ispin,
            polarons=list(zip(run.polaron_sites, run.polaron_signs, strict=True)),
            free_electrons=run.free_electrons,
            u_on_w=run.u_on_w,
        )
        (directory / "WAVECAR").write_text(state.to_text())
    if is_truthy(job.incar.get("LCHARG", True)) and not stopped:
        _write_chgcar(directory / "CHGCAR", job, run)
    run.notes.append(stdout_text(job, run, error, truncated, death))
    return run


def write_large_run(
    dest: str | Path,
    natoms: int = 257,
    nbands: int = 1200,
    nedos: int = 3001,
    nkpts: int = 4,
    scenario: str | Path | Scenario | None = None,
) -> Path:
    """Write a production-size LORBIT=11, ISPIN=2 run (a W-O supercell with one Mg) to ``dest``.

    Builds the job folder itself (INCAR, POSCAR, POTCAR.spec, KPOINTS) and runs the
    emulator; the stable entry point for the analysis benchmarks.

    Parameters
    ----------
    dest
        Folder to create/fill.
    natoms
        Number of atoms: W_n O_3n plus one Mg (``natoms = 4 n + 1``; rounded down).
    nbands, nedos
        NBANDS and NEDOS written to the INCAR. NBANDS is raised to hold the electrons
        (14 per W, 6 per O, 8 for Mg, in ISPIN = 2 with two polaron levels) plus four empty
        bands: fewer would be VASP's "TOO FEW BANDS" failure.
    nkpts
        Number of irreducible k-points (an explicit list is written).
    scenario
        Scenario (default ``paper_like``).

    Returns
    -------
    Path
        ``dest``.
    """
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.vasp import Incar, Poscar

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    n_w = max(1, (natoms - 1) // 4)
    nbands = max(nbands, (14 * n_w + 18 * n_w + 8) // 2 + 4)
    # A simple ReO3-like arrangement: W on a cubic grid, O on the bond midpoints.
    side = int(np.ceil(n_w ** (1 / 3)))
    a = 3.76
    coords, species = [], []
    cells = [(i, j, k) for i in range(side) for j in range(side) for k in range(side)][:n_w]
    for i, j, k in cells:
        base = np.array([i, j, k], dtype=float)
        species.append("W")
        coords.append(base / side)
    for i, j, k in cells:
        base = np.array([i, j, k], dtype=float)
        for shift in ((0.5, 0, 0), (0, 0.5, 0), (0, 0, 0.5)):
            species.append("O")
            coords.append((base + np.array(shift)) / side)
    species.append("Mg")
    coords.append((np.array([0.5, 0.5, 0.5])) / side)
    structure = Structure(Lattice.cubic(a * side), species, coords)
    w_idx = [i for i, s in enumerate(species) if s == "W"]
    magmom = [0.0] * len(species)
    magmom[w_idx[0]] = 1.0
    magmom[w_idx[min(len(w_idx) - 1, side * side + side + 1)]] = 1.0
    Poscar(structure, comment="large emulator benchmark run").write_file(dest / "POSCAR")
    Incar(
        {
            "SYSTEM": "large emulator benchmark",
            "ISPIN": 2,
            "LORBIT": 11,
            "NBANDS": nbands,
            "NEDOS": nedos,
            "ISMEAR": 0,
            "SIGMA": 0.05,
            "ENCUT": 500,
            "EDIFF": 1e-5,
            "METAGGA": "Scan",
            "LASPH": True,
            "LDAU": True,
            "LDAUTYPE": 2,
            "LDAUL": [2, -1, -1],
            "LDAUU": [5.0, 0.0, 0.0],
            "LDAUJ": [0.0, 0.0, 0.0],
            "LMAXMIX": 4,
            "MAGMOM": magmom,
            "NSW": 0,
            "IBRION": -1,
            "LWAVE": False,
            "LCHARG": False,
            "NELM": 100,
            "ALGO": "All",
        }
    ).write_file(dest / "INCAR")
    (dest / "POTCAR.spec").write_text("W_sv\nO\nMg_pv\n")
    kpts = [
        (0.0, 0.0, 0.0),
        (0.5, 0.0, 0.0),
        (0.0, 0.5, 0.0),
        (0.0, 0.0, 0.5),
        (0.5, 0.5, 0.0),
        (0.5, 0.0, 0.5),
        (0.0, 0.5, 0.5),
        (0.5, 0.5, 0.5),
    ]
    kpts = (kpts * (nkpts // len(kpts) + 1))[:nkpts]
    lines = ["Explicit k-points (emulator benchmark)", str(nkpts), "Reciprocal"]
    lines += ["%.6f %.6f %.6f 1" % k for k in kpts]
    (dest / "KPOINTS").write_text("\n".join(lines) + "\n")
    run_emulator(dest, scenario)
    return dest


def main(argv: list[str] | None = None) -> int:
    """Command-line entry (``polaronflow-mock-vasp`` / ``python -m ...emulator``).

    Runs in the current folder (as VASP does) and prints VASP-like progress to stdout, so it
    can be custodian's VASP_CMD. Options: ``--scenario NAME|PATH``, ``--dir PATH``.
    """
    import argparse

    from polaronflow.errors import PolaronflowError

    parser = argparse.ArgumentParser(
        prog="polaronflow-mock-vasp",
        description="Mock VASP: write synthetic, format-faithful VASP outputs for a job folder.",
    )
    parser.add_argument("--scenario", default=None, help="scenario name or YAML path")
    parser.add_argument("--dir", default=".", help="job folder (default: current folder)")
    args = parser.parse_args(argv)
    try:
        run = run_emulator(args.dir, args.scenario)
    except PolaronflowError as exc:
        sys.stderr.write(f"polaronflow-mock-vasp: error: {exc}\n")
        return 2
    sys.stdout.write(run.notes[-1])
    sys.stdout.flush()
    return 0


def console_main() -> None:  # pragma: no cover - thin wrapper
    """Console-script wrapper around :func:`main`."""
    sys.exit(main())
