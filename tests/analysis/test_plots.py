"""Figures from constructed runs: DOS, polaron map, U ramp; lazy matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from polaronflow.analysis import plots
from polaronflow.analysis.electronic import analyze_electronic
from polaronflow.analysis.models import RampStep, RampTrace
from polaronflow.analysis.polarons import analyze_polarons
from polaronflow.analysis.rundata import RunData

pytest.importorskip("matplotlib")


def _run(synthetic: bool) -> RunData:
    n, a = 3, 3.78
    species, frac = [], []
    grid = [(i, j, k) for i in range(n) for j in range(n) for k in range(n)]
    for g in grid:
        species.append("W")
        frac.append(np.array(g, float) / n)
    for g in grid:
        for axis in range(3):
            p = np.array(g, float)
            p[axis] += 0.5
            species.append("O")
            frac.append(p / n)
    species.append("Mg")
    frac.append(np.full(3, 0.5) / n)
    moments = np.zeros(len(species))
    moments[0] = 0.7
    for nb in (1, 2, 3, 6):  # (0,0,1) (0,0,2) (0,1,0) (0,2,0): tails in the (100) plane
        moments[nb] = 0.08
    nw = len(grid)
    eig = np.concatenate([np.linspace(-5, 0, 40), [2.0], np.linspace(2.5, 6, 30)])
    eigs = np.array([[eig], [np.concatenate([np.linspace(-5, 0, 40), np.linspace(2.5, 6, 31)])]])
    occ = np.zeros_like(eigs)
    occ[0, 0, :41] = 1
    occ[1, 0, :40] = 1
    e = np.linspace(-6, 7, 1301)
    sig = 0.05
    tdos = np.array(
        [np.exp(-0.5 * ((e[:, None] - eigs[s, 0][None]) / sig) ** 2).sum(1) for s in range(2)]
    ) / (sig * np.sqrt(2 * np.pi))
    pdos = np.zeros((len(species), 2, 9, len(e)))
    pdos[:nw, :, 4] = tdos[None] * 0.6 / nw  # W d
    pdos[nw:-1, :, 1] = tdos[None] * 0.4 / (len(species) - nw - 1)  # O p
    return RunData(
        path=Path("mg_demo"),
        synthetic=synthetic,
        species=species,
        lattice=np.eye(3) * a * n,
        frac_coords=np.array(frac),
        site_moments=moments,
        total_moment=1.0,
        parameters={"ISPIN": 2},
        eigenvalues=eigs,
        occupations=occ,
        kpoint_weights=np.array([1.0]),
        efermi=2.1,
        dos_energies=e,
        total_dos=tdos,
        pdos=pdos,
    )


@pytest.mark.parametrize("synthetic", [False, True])
def test_dos_and_polaron_map(tmp_path, synthetic):
    run = _run(synthetic)
    el = analyze_electronic(run, dos_elements=["W", "O"])
    assert el.level_dos is not None and "projected on W+O" in el.level_dos.detail
    assert el.level_dos.character == {"W": pytest.approx(0.6), "O": pytest.approx(0.4), "Mg": 0.0}
    pol = analyze_polarons(run, electrons=1)
    assert pol.polarons[0].plane == "(100)"
    dos_png = plots.plot_dos(run, el, tmp_path / "dos.png")
    map_png = plots.plot_polaron_map(run, pol, tmp_path / "map.png")
    for png in (dos_png, map_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_u_ramp_trace(tmp_path):
    trace = RampTrace(
        system="MgW64O192",
        element="W",
        steps=[
            RampStep(path=f"u{u}", u=u, energy=-10 - u, largest_moments=[0.8, 0.7], converged=True)
            for u in (9, 8, 7, 6, 5)
        ],
    )
    png = plots.plot_u_ramp(trace, tmp_path / "ramp.png", synthetic=True)
    assert png.stat().st_size > 10_000


def test_titles_say_synthetic():
    assert plots._title("DOS", True).startswith("SYNTHETIC (emulator)")
    assert plots._title("DOS", False) == "DOS"


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, polaronflow.analysis.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
