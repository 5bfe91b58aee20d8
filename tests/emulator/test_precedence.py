"""VASP's precedence (issue 15, item 5): a WAVECAR read continues its state, MAGMOM does not.

Also: localisation decided by U against the scenario's critical U, NUPDOWN enforced for any
value, band edges moving with U, projections consistent with the total DOS.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from polaronflow.emulator import run_emulator
from polaronflow.emulator.jobs import reo3_cell, scan_u_incar, write_job
from polaronflow.emulator.scenario import load_scenario

SCEN = load_scenario("paper_like")
MG = SCEN.dopants["Mg"]
COUNTS = {"W": 8, "O": 24, "Mg": 1}


def _job(folder: Path, seeds: dict[int, float], u: float = 9.0, **incar) -> Path:
    structure = reo3_cell(2, dopant="Mg")
    magmom = [0.0] * len(structure)
    for site, value in seeds.items():
        magmom[site] = value
    settings = {"MAGMOM": magmom, "NSW": 0, "IBRION": -1, "NEDOS": 301, "LORBIT": 11, **incar}
    write_job(folder, structure, scan_u_incar(COUNTS, u=u, **settings))
    return folder


def _moments(folder: Path) -> np.ndarray:
    from pymatgen.io.vasp import Outcar

    return np.array([m["tot"] for m in Outcar(folder / "OUTCAR").magnetization])


def _polaron_w(folder: Path) -> list[int]:
    mom = _moments(folder)[:8]
    return sorted(int(i) for i in np.flatnonzero(np.abs(mom) > 0.3))


def _continue(prev: Path, folder: Path, seeds: dict[int, float], u: float, **incar) -> Path:
    """A next step: new INCAR (with other seeds), the previous WAVECAR copied in."""
    _job(folder, seeds, u=u, **incar)
    if (prev / "WAVECAR").exists():
        shutil.copy(prev / "WAVECAR", folder / "WAVECAR")
    run_emulator(folder)
    return folder


def test_seeds_act_without_a_wavecar(tmp_path: Path) -> None:
    run_emulator(_job(tmp_path, {2: 1.0, 5: 1.0}))
    assert _polaron_w(tmp_path) == [2, 5]
    assert (tmp_path / "WAVECAR").read_text().startswith("POLARONFLOW-SYNTHETIC")


def test_a_wavecar_read_ignores_magmom(tmp_path: Path) -> None:
    first = tmp_path / "u9"
    run_emulator(_job(first, {2: 1.0, 5: 1.0}))
    # ISTART unset with a WAVECAR present: VASP's default ISTART = 1 reads it.
    nxt = _continue(first, tmp_path / "u7", {0: 1.0, 7: 1.0}, u=7.0)
    assert _polaron_w(nxt) == [2, 5]
    # explicit ISTART = 1: the same
    nxt1 = _continue(first, tmp_path / "u7b", {0: 1.0, 7: 1.0}, u=7.0, ISTART=1)
    assert _polaron_w(nxt1) == [2, 5]


def test_istart_0_or_no_wavecar_lets_the_seeds_act(tmp_path: Path) -> None:
    first = tmp_path / "u9"
    run_emulator(_job(first, {2: 1.0, 5: 1.0}))
    fresh = _continue(first, tmp_path / "fresh", {0: 1.0, 7: 1.0}, u=7.0, ISTART=0, ICHARG=2)
    assert _polaron_w(fresh) == [0, 7]
    # ISTART = 1 but no WAVECAR: VASP starts from random wavefunctions, MAGMOM acts
    missing = _job(tmp_path / "missing", {0: 1.0, 7: 1.0}, u=7.0, ISTART=1)
    run_emulator(missing)
    assert _polaron_w(missing) == [0, 7]
    # an empty WAVECAR is not read either
    empty = _job(tmp_path / "empty", {0: 1.0, 7: 1.0}, u=7.0)
    (empty / "WAVECAR").write_text("")
    run_emulator(empty)
    assert _polaron_w(empty) == [0, 7]


def test_seed_threshold_is_the_scenarios_not_half_a_muB(tmp_path: Path) -> None:
    # a carried moment of 0.499 muB still seeds; one below the threshold does not
    run_emulator(_job(tmp_path / "a", {2: 0.499, 5: 0.499}))
    assert _polaron_w(tmp_path / "a") == [2, 5]
    weak = SCEN.host.seed_threshold * 0.9
    run_emulator(_job(tmp_path / "b", {2: weak, 5: weak}))
    assert _polaron_w(tmp_path / "b") == []


def test_ramp_below_the_critical_u_delocalises_and_a_fresh_start_reseeds(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    assert MG.critical_u is not None
    seeds = {2: 1.0, 5: 1.0}
    prev = tmp_path / "u9"
    run_emulator(_job(prev, seeds))
    u_above, u_below = MG.critical_u + 0.4, MG.critical_u - 0.4
    above = _continue(prev, tmp_path / "above", seeds, u=u_above)
    assert _polaron_w(above) == [2, 5]
    below = _continue(above, tmp_path / "below", seeds, u=u_below)
    mom = _moments(below)
    assert np.abs(mom).max() < 0.1 and mom[:8].sum() > 0.1  # spread over every W
    vr = Vasprun(below / "vasprun.xml", parse_potcar_file=False)
    occ = np.concatenate([vr.eigenvalues[s][:, :, 1].ravel() for s in vr.eigenvalues])
    assert np.any((occ > 0.02) & (occ < 0.98))  # metallic occupations
    eig = np.concatenate([vr.eigenvalues[s][:, :, 0].ravel() for s in vr.eigenvalues])
    cbm = SCEN.host.cbm + SCEN.host.cbm_u_slope * (u_below - SCEN.host.u_reference)
    assert vr.efermi > cbm  # the electrons are in the conduction band
    assert eig[(occ > 0.5)].max() > cbm
    # Continuing from the delocalised WAVECAR at a higher U keeps it delocalised, whatever
    # the MAGMOM says: VASP ignores MAGMOM when it reads a WAVECAR.
    back = _continue(below, tmp_path / "back", seeds, u=u_above)
    assert _polaron_w(back) == []
    # A re-seed that starts fresh (no WAVECAR, ISTART = 0, ICHARG = 2) localises again.
    reseed = _job(tmp_path / "reseed", seeds, u=u_above, ISTART=0, ICHARG=2)
    run_emulator(reseed)
    assert _polaron_w(reseed) == [2, 5]
    # ... but not below the critical U, seeds or not.
    low = _job(tmp_path / "low", seeds, u=u_below, ISTART=0, ICHARG=2)
    run_emulator(low)
    assert _polaron_w(low) == []


@pytest.mark.parametrize("nupdown", [0, 1, 2, 4])
def test_nupdown_is_enforced_for_any_value(tmp_path: Path, nupdown: int) -> None:
    from pymatgen.io.vasp import Outcar, Vasprun

    folder = _job(tmp_path, {2: 1.0, 5: 1.0}, NUPDOWN=nupdown, LORBIT=11)
    run_emulator(folder)
    vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
    from pymatgen.electronic_structure.core import Spin

    weights = np.asarray(vr.actual_kpoints_weights)
    n = {s: float(weights @ vr.eigenvalues[s][:, :, 1].sum(axis=1)) for s in vr.eigenvalues}
    assert n[Spin.up] - n[Spin.down] == pytest.approx(nupdown, abs=2e-3)
    assert n[Spin.up] + n[Spin.down] == pytest.approx(vr.parameters["NELECT"], abs=2e-3)
    assert Outcar(folder / "OUTCAR").total_mag == pytest.approx(nupdown, abs=2e-3)


def test_a_forced_high_spin_costs_about_the_gap(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    energies = {}
    for nupdown in (2, 4):
        folder = _job(tmp_path / str(nupdown), {2: 1.0, 5: 1.0}, NUPDOWN=nupdown, LORBIT=0)
        run_emulator(folder)
        vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
        energies[nupdown] = vr.final_energy
    gap = SCEN.host.cbm + SCEN.host.cbm_u_slope * 4 - SCEN.host.vbm
    # one electron moved from the top of the minority O 2p band to the majority W 5d band
    assert energies[4] - energies[2] == pytest.approx(gap, abs=0.3)


def test_band_edges_move_with_u(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    cbm, gap = {}, {}
    for u in (9.0, 5.0):
        folder = tmp_path / f"host{u:g}"
        write_job(folder, reo3_cell(2, dopant=None), scan_u_incar({"W": 8, "O": 24}, u=u, NSW=0))
        run_emulator(folder)
        vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False, parse_dos=False)
        gap[u], cbm[u], _, _ = vr.eigenvalue_band_properties
    slope = SCEN.host.cbm_u_slope
    assert slope > 0
    assert cbm[9.0] - cbm[5.0] == pytest.approx(4 * slope, abs=2e-3)
    assert gap[9.0] - gap[5.0] == pytest.approx(4 * slope, abs=2e-3)


def test_projections_are_consistent_with_the_total_dos(tmp_path: Path) -> None:
    from pymatgen.io.vasp import Vasprun

    folder = _job(tmp_path, {2: 1.0, 5: 1.0}, u=5.0, NEDOS=1201)
    run_emulator(folder)
    vr = Vasprun(folder / "vasprun.xml", parse_potcar_file=False)
    dos = vr.complete_dos
    total = sum(dos.densities.values())
    projected = sum(
        sum(sum(d.values()) for d in dos.pdos[site].values()) for site in vr.final_structure
    )
    level = SCEN.host.cbm - MG.ingap_depth
    windows = {
        "valence": (-6.0, SCEN.host.vbm + 0.2),
        "in-gap": (level - 0.1, level + 0.1),
        "conduction": (SCEN.host.cbm + 0.1, SCEN.host.cbm + 4.0),
    }
    for name, (lo, hi) in windows.items():
        m = (dos.energies > lo) & (dos.energies < hi)
        ratio = projected[m].sum() / total[m].sum()
        # PAW spheres hold most but not all of the charge: never more than the total
        assert 0.8 < ratio <= 1.0 + 1e-3, name
