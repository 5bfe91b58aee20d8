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


@pytest.fixture
def figures(monkeypatch):
    """Every Figure the plots module makes, to look inside (labels, titles, limits)."""
    made = []
    real = plots._figure

    def capture(*args, **kwargs):
        fig = real(*args, **kwargs)
        made.append(fig)
        return fig

    monkeypatch.setattr(plots, "_figure", capture)
    return made


def _texts(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.texts]
        if ax.get_legend() is not None:
            parts += [t.get_text() for t in ax.get_legend().get_texts()]
    for leg in fig.legends:
        parts += [t.get_text() for t in leg.get_texts()]
    return " | ".join(parts)


def test_dos_relative_to_host_vbm_with_valence_band_and_marks(tmp_path, figures):
    run = _run(True)
    el = analyze_electronic(run, dos_elements=["W", "O"])
    plots.plot_dos(run, el, tmp_path / "dos.png", elements=("W", "O"))
    (fig,) = figures
    text = _texts(fig)
    assert text.startswith("SYNTHETIC (emulator)")
    assert "E − host VBM (eV)" in text and "E_F (VASP)" in text
    assert "W (projected)" in text and "O (projected)" in text
    # marked once, and explained: the reported (DOS-method) level and its CBM
    assert text.count("in-gap level") == 2  # legend entry + the explanation in the title
    assert f"{el.level_dos.depth:.2f} eV below the CBM (dos-peak" in text
    full = fig.axes[0]
    lo, hi = full.get_xlim()
    assert lo <= -5 and hi >= el.level_dos.cbm - el.host_vbm  # the valence band is in view
    ymax = full.get_ylim()[1]
    assert ymax >= np.max(run.total_dos)  # and not clipped


def test_dos_projects_on_the_cation_given(tmp_path, figures):
    run = _run(False)
    run.species = ["Mo" if sp == "W" else sp for sp in run.species]
    el = analyze_electronic(run, dos_elements=["Mo", "O"])
    plots.plot_dos(run, el, tmp_path / "dos.png", elements=("Mo", "O"))
    text = _texts(figures[0])
    assert "Mo (projected)" in text and "W (projected)" not in text


def test_no_empty_polaron_map(tmp_path):
    run = _run(False)
    run.site_moments = np.zeros(len(run.species))
    pol = analyze_polarons(run, electrons=0)
    with pytest.raises(ValueError, match="nothing to map"):
        plots.plot_polaron_map(run, pol, tmp_path / "map.png")
    assert not (tmp_path / "map.png").exists()


def test_polaron_map_titles_use_vasp_ion_numbers(tmp_path, figures):
    run = _run(False)
    pol = analyze_polarons(run, electrons=1)
    plots.plot_polaron_map(run, pol, tmp_path / "map.png")
    text = _texts(figures[0])
    assert "W1 +0.70 μB, plane (100)" in text and "from Mg109" in text


def test_u_ramp_shows_level_and_moments_not_energy(tmp_path, figures):
    trace = RampTrace(
        system="mg",
        element="W",
        steps=[
            RampStep(
                path=f"u{u}",
                u=u,
                energy=-10 - u,
                largest_moments=[0.8, 0.7],
                converged=True,
                level_depth=0.3 + 0.05 * u,
                moments=[0.6 + 0.02 * u, 0.5 + 0.02 * u],
                polaron_ions=[38, 1],
            )
            for u in (9, 8, 7, 6, 5)
        ],
    )
    png = plots.plot_u_ramp(trace, tmp_path / "ramp.png", synthetic=True)
    assert png.stat().st_size > 10_000
    text = _texts(figures[0])
    assert "in-gap level below CBM (eV)" in text and "polaron W |m| (μB)" in text
    assert "W38" in text and "W1" in text and "energy" not in text
    assert text.startswith("SYNTHETIC (emulator)")


def _chgcar(run: RunData, path: Path) -> Path:
    """A small real-format spin-polarised CHGCAR: a Gaussian spin blob on the polaron W."""
    from pymatgen.io.vasp import Chgcar, Poscar

    structure = run.to_structure()
    grid = (24, 24, 24)
    f = np.stack(np.meshgrid(*[np.arange(g) / g for g in grid], indexing="ij"), -1)
    d = f - run.frac_coords[0]
    d -= np.round(d)
    r2 = np.sum((d @ run.lattice) ** 2, axis=-1)
    volume = abs(np.linalg.det(run.lattice))
    spin = np.exp(-r2 / 0.8)
    spin *= 0.7 / spin.mean()  # VASP stores ρ·V: the mean is the moment
    total = np.full(grid, 10.0 * len(run.species))
    del volume
    Chgcar(Poscar(structure), {"total": total, "diff": spin}).write_file(str(path))
    return path


def test_spin_density_figure_and_vesta_file(tmp_path, figures):
    from pymatgen.io.vasp import Chgcar

    run = _run(True)
    pol = analyze_polarons(run, electrons=1)
    chgcar = _chgcar(run, tmp_path / "CHGCAR")
    png = plots.plot_spin_density(run, pol, chgcar, tmp_path / "spin.png")
    assert png.stat().st_size > 10_000
    text = _texts(figures[0])
    assert text.startswith("SYNTHETIC") and "magnetisation density (μB/Å³)" in text
    assert "W1 +0.70 μB, plane (100)" in text
    ax = figures[0].axes[0]
    image = ax.get_images()[0].get_array()
    # the slice through W1 peaks at the polaron site (the centre of the panel)
    peak = np.unravel_index(np.argmax(image), image.shape)
    assert abs(peak[0] - image.shape[0] // 2) <= 3 and abs(peak[1] - image.shape[1] // 2) <= 3
    out = plots.write_spin_density(chgcar, tmp_path / "spin.vasp")
    back = Chgcar.from_file(str(out))
    original = Chgcar.from_file(str(chgcar))
    assert "diff" not in back.data
    assert np.allclose(back.data["total"], original.data["diff"], rtol=1e-4, atol=1e-6)


def test_spin_density_needs_a_spin_polarised_chgcar(tmp_path):
    from pymatgen.io.vasp import Chgcar, Poscar

    from polaronflow.errors import RunReadError

    run = _run(False)
    path = tmp_path / "CHGCAR"
    Chgcar(Poscar(run.to_structure()), {"total": np.ones((8, 8, 8))}).write_file(str(path))
    with pytest.raises(RunReadError, match="no magnetisation density"):
        plots.read_magnetization_density(path)


def test_titles_say_synthetic():
    assert plots._title("DOS", True).startswith("SYNTHETIC (emulator)")
    assert plots._title("DOS", False) == "DOS"


def test_importing_plots_does_not_import_matplotlib():
    code = "import sys, polaronflow.analysis.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
