"""Figures: spin-resolved projected DOS, polaron maps, U-ramp traces and spin-density slices.

matplotlib is imported inside the functions and only through its object-oriented API
(``matplotlib.figure.Figure`` with the Agg canvas), so importing this module is cheap and no
interactive backend is ever touched.  Titles start with "SYNTHETIC (emulator)" for emulator
output.  Sites are labelled with their 1-based VASP ion numbers (as in the OUTCAR and VESTA).

What each figure shows (``docs/analysis.md`` has examples):

* ``<run>_dos.png``: the DOS projected on the host cation and O (total DOS in grey), energies
  relative to the host valence-band maximum (E_F for a metal, stated on the axis), E_F drawn;
  the left panel shows the valence band, the right panel zooms on the gap with the in-gap level
  and the CBM marked once and the depth written out, with the method used;
* ``<run>_polarons.png``: the site moments of the host-cation plane through each polaron;
* ``u_ramp_<system>.png``: the in-gap level depth and the polaron moments against U;
* ``<run>_spin_density.png``: the CHGCAR magnetisation density sliced through each polaron's
  plane around the polaron site, and ``<run>_spin_density.vasp``: that density as a
  CHGCAR-format file VESTA opens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polaronflow.analysis.models import (
    AnalysisReport,
    ElectronicAnalysis,
    LevelDepth,
    PolaronAnalysis,
    RampTrace,
)
from polaronflow.analysis.polarons import minimum_image_vectors
from polaronflow.analysis.rundata import RunData

SYNTHETIC_TITLE = "SYNTHETIC (emulator)"
_COLOURS = {"O": "tab:red", "total": "0.5"}
_CATION_COLOUR = "tab:blue"


def _figure(*args: Any, **kwargs: Any):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(*args, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _title(text: str, synthetic: bool) -> str:
    return f"{SYNTHETIC_TITLE}: {text}" if synthetic else text


def _name(run: RunData) -> str:
    return Path(str(run.path)).name or str(run.path)


def _reported_level(electronic: ElectronicAnalysis) -> LevelDepth | None:
    """The level the report leads with: the DOS method when it exists, else occupations."""
    return electronic.level_dos or electronic.level_occupations


# ----------------------------------------------------------------------------------- DOS
def plot_dos(
    run: RunData,
    electronic: ElectronicAnalysis,
    path: str | Path,
    elements: Sequence[str] = ("W", "O"),
    below: float = 6.0,
    above: float = 3.0,
) -> Path:
    """Spin-resolved DOS projected on ``elements``, valence band to conduction band.

    Parameters
    ----------
    run
        The run; its projected DOS is read on demand (``readers.read_pdos``) when absent.
    electronic
        Its electronic analysis (band edges and levels to mark).
    path
        PNG file to write.
    elements
        Elements to project on (the host cation and O); the total DOS is drawn in grey.
    below, above
        The left panel spans host VBM − ``below`` to CBM + ``above``, eV.

    Returns
    -------
    Path
        The file written.
    """
    if run.dos_energies is None or run.total_dos is None:
        raise ValueError(f"{run.path}: no DOS to plot")
    if run.pdos is None and run.files:
        from polaronflow.analysis.readers import read_pdos
        from polaronflow.errors import RunReadError

        try:
            read_pdos(run)
        except RunReadError:  # no projections in the files: the total DOS alone
            pass
    e_abs = np.asarray(run.dos_energies, dtype=float)
    tdos = np.asarray(run.total_dos, dtype=float)
    metal = electronic.metal or electronic.host_vbm is None
    if metal:
        zero = float(electronic.efermi if electronic.efermi is not None else 0.0)
        zero_name = "E_F"
    else:
        # "host VBM" only where occupied in-gap states make it differ from the VBM
        zero = float(electronic.host_vbm)
        zero_name = "host VBM" if electronic.in_gap_states else "VBM"
    e = e_abs - zero
    nspin = tdos.shape[0]
    signs = (1.0, -1.0)
    curves: list[tuple[str, str, np.ndarray]] = []  # (label, colour, (nspin, nedos))
    if run.pdos is not None:
        pdos = np.asarray(run.pdos)
        for k, el in enumerate(dict.fromkeys(elements)):
            mask = np.array([sp == el for sp in run.species])
            if mask.any():
                colour = _CATION_COLOUR if k == 0 else _COLOURS.get(el, f"C{k + 2}")
                curves.append((f"{el} (projected)", colour, pdos[mask].sum(axis=(0, 2))))

    level = None if metal else _reported_level(electronic)
    # One CBM on the figure: the one the reported level is measured from.
    cbm = None if metal else (level.cbm if level is not None else float(electronic.cbm)) - zero
    lo = -below
    hi = (cbm if cbm is not None else 0.0) + above
    # The gap panel is for the in-gap level; without one a single panel says it all.
    with_zoom = level is not None and cbm is not None
    fig = _figure(figsize=(10.0 if with_zoom else 7.0, 4.4), dpi=150, layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=[1.6, 1.0]) if with_zoom else [fig.add_subplot()]

    def draw(ax, x0: float, x1: float, legend: bool) -> float:
        sel = (e >= x0) & (e <= x1)
        for s in range(nspin):
            ax.fill_between(
                e[sel],
                0,
                signs[s] * tdos[s][sel],
                color="0.85",
                lw=0,
                label="total" if (s == 0 and legend) else None,
            )
            for label, colour, curve in curves:
                ax.plot(
                    e[sel],
                    signs[s] * curve[s][sel],
                    color=colour,
                    lw=1.0,
                    label=label if (s == 0 and legend) else None,
                )
        peak = float(np.max(np.abs(tdos[:, sel]))) if sel.any() else 1.0
        ax.set_xlim(x0, x1)
        ax.axhline(0, color="k", lw=0.5)
        return max(peak, 1e-6)

    ax = axes[0]
    ymax = draw(ax, lo, hi, legend=True)
    ax.set_ylim(-1.05 * ymax if nspin == 2 else 0, 1.05 * ymax)
    if electronic.efermi is not None:
        ef = float(electronic.efermi) - zero
        for a in axes:
            a.axvline(ef, color="k", ls="--", lw=0.8, label="E_F (VASP)" if a is ax else None)
    if cbm is not None:
        ax.axvline(cbm, color="tab:green", ls=":", lw=1.0, label="CBM")
    ax.set_xlabel(f"E − {zero_name} (eV)" + ("  [metal: no gap]" if metal else ""))
    ax.set_ylabel("DOS (states/eV)" + ("   up ↑ / down ↓" if nspin == 2 else ""))

    explanation = ""
    if with_zoom:
        zx = axes[1]
        x0, x1 = -0.5, float(cbm) + 1.0
        sel = (e > 0.3) & (e < float(cbm) - 0.05)
        gap_peak = float(np.max(np.abs(tdos[:, sel]))) if sel.any() else 0.0
        edge = (e >= float(cbm)) & (e <= float(cbm) + 0.6)
        cb_peak = float(np.max(np.abs(tdos[:, edge]))) if edge.any() else 0.0
        draw(zx, x0, x1, legend=False)
        zlim = 1.3 * max(gap_peak, 0.25 * cb_peak, 1e-3)
        zx.set_ylim(-zlim if nspin == 2 else 0, zlim)
        zx.axvline(float(cbm), color="tab:green", ls=":", lw=1.0)
        zx.set_xlabel(f"E − {zero_name} (eV), gap region")
        zx.set_title("gap region (y scale enlarged)", fontsize=8)
        if level is not None:
            lv, cb = level.level - zero, level.cbm - zero
            zx.axvline(lv, color="tab:purple", ls="-", lw=0.8, alpha=0.6)
            ax.axvline(lv, color="tab:purple", ls="-", lw=0.8, alpha=0.6, label="in-gap level")
            y = 0.9 * zlim
            zx.annotate(
                "",
                xy=(lv, y),
                xytext=(cb, y),
                arrowprops={"arrowstyle": "<->", "color": "tab:purple", "lw": 1.0},
            )
            # The depth in a corner box: the arrow is often shorter than its label.
            zx.text(
                0.03,
                0.97,
                f"level → CBM: {level.depth:.2f} eV",
                transform=zx.transAxes,
                ha="left",
                va="top",
                fontsize=8,
                color="tab:purple",
                bbox={"facecolor": "white", "edgecolor": "tab:purple", "pad": 2.0, "lw": 0.6},
            )
            source = level.detail.split(":")[0] if level.method == "dos-peak" else "eigenvalues"
            explanation = (
                f"in-gap level {level.depth:.2f} eV below the CBM "
                f"({level.method}, {source}); CBM at {cb:+.2f} eV"
            )
    elif metal:
        explanation = "metal: bands cross E_F, so no gap and no in-gap level"
    elif electronic.host_gap is not None:
        what = "host gap" if electronic.in_gap_states else "gap"
        explanation = f"no occupied in-gap level; {what} {electronic.host_gap:.2f} eV (eigenvalues)"
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, frameon=False)
    title = f"DOS of {_name(run)}"
    if explanation:
        title += f"\n{explanation}"
    fig.suptitle(_title(title, run.synthetic), fontsize=9)
    out = Path(path)
    fig.savefig(out)
    return out


# --------------------------------------------------------------------------- polaron map
def _plane_axes(lattice: np.ndarray, hkl: Sequence[int]) -> tuple[np.ndarray, ...]:
    """(normal, u, v): the unit normal of plane (hkl) and two in-plane unit vectors."""
    recip = np.linalg.inv(lattice).T
    normal = np.asarray(hkl, dtype=float) @ recip
    normal /= np.linalg.norm(normal)
    # u along the in-plane lattice vector closest to the plane (so (100) shows b and c)
    cands = [lattice[i] - (lattice[i] @ normal) * normal for i in range(3)]
    u = max(cands, key=np.linalg.norm)
    u = u / np.linalg.norm(u)
    v = np.cross(normal, u)
    return normal, u, v


def plot_polaron_map(
    run: RunData, polarons: PolaronAnalysis, path: str | Path, slab: float = 1.2
) -> Path:
    """Moments on the host-cation sites of each polaron's plane, around the polaron.

    One panel per polaron (up to four): the cation sites within ``slab`` Å of the plane through
    the polaron centre (normal = its Miller plane, (100) when none was found) drawn in in-plane
    coordinates relative to the centre; colour = signed moment, size = |m|; the dopant's
    projection is marked.

    Raises
    ------
    ValueError
        No structure, no moments, or no polaron to draw (no empty figures).
    """
    if run.lattice is None or run.frac_coords is None or run.site_moments is None:
        raise ValueError(f"{run.path}: a polaron map needs a structure and site moments")
    sites = polarons.polarons[:4]
    if not sites:
        raise ValueError(f"{run.path}: no polaron above {polarons.threshold} μB: nothing to map")
    lattice = np.asarray(run.lattice, dtype=float)
    frac = np.asarray(run.frac_coords, dtype=float)
    moments = np.asarray(run.site_moments, dtype=float)
    cations = np.array([i for i, s in enumerate(run.species) if s == polarons.host_element])
    n = len(sites)
    fig = _figure(figsize=(3.9 * n + 1.2, 4.6), dpi=150, layout="constrained")
    vmax = max(float(np.max(np.abs(moments[cations]))), 0.05)
    scatter = None
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, site in zip(axes, sites, strict=True):
        normal, u, v = _plane_axes(lattice, site.plane_hkl or [1, 0, 0])
        vec = minimum_image_vectors(lattice, frac[site.index], frac[cations])
        inplane = np.abs(vec @ normal) <= slab
        xy = np.stack([vec[inplane] @ u, vec[inplane] @ v], axis=1)
        m = moments[cations[inplane]]
        scatter = ax.scatter(
            xy[:, 0],
            xy[:, 1],
            c=m,
            cmap="coolwarm",
            vmin=-vmax,
            vmax=vmax,
            s=30 + 500 * np.abs(m) / vmax,
            edgecolors="k",
            linewidths=0.5,
            zorder=2,
        )
        sizes = 30 + 500 * np.abs(m) / vmax  # as the scatter's marker areas, pt²
        for (x, y), mm, size in zip(xy, m, sizes, strict=True):
            if abs(mm) >= 0.02:
                big = abs(mm) > 0.5 * vmax  # inside its own (large, dark) marker
                ax.annotate(
                    f"{mm:+.2f}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(0, 0) if big else (0, -(np.sqrt(size) / 2 + 2)),
                    ha="center",
                    va="center" if big else "top",
                    fontsize=6,
                    color="white" if big else "black",
                    zorder=4,
                )
        if site.dopant_index is not None:
            dv = minimum_image_vectors(lattice, frac[site.index], frac[[site.dopant_index]])[0]
            ax.scatter([dv @ u], [dv @ v], marker="X", s=90, c="tab:green", zorder=3)
        lim = max(float(np.max(np.abs(xy))) + 1.0, 4.5) if len(xy) else 6.0
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        where = ""
        if site.shell:
            d = site.distance_to_dopant
            where = f"\nshell {site.shell}, {d:.2f} Å from {site.dopant_element}{site.dopant_ion}"
        plane = site.plane or "(100)*"
        ax.set_title(
            f"{site.element}{site.ion} {site.moment:+.2f} μB, plane {plane}{where}", fontsize=8
        )
        ax.set_aspect("equal")
        ax.set_xlabel("in-plane x (Å)", fontsize=8)
        ax.set_ylabel("in-plane y (Å)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.2)
    if scatter is not None:
        cbar = fig.colorbar(scatter, ax=list(axes), shrink=0.85)
        cbar.set_label("site moment (μB)", fontsize=8)
    foot = f"{polarons.host_element} sites within {slab} Å of each plane"
    if any(s.dopant_index is not None for s in sites):
        foot += "; X = dopant projected onto the plane"
    if any(s.plane is None for s in sites):
        foot += "; * no plane found, (100) shown"
    fig.suptitle(_title(f"polarons in {_name(run)}", run.synthetic) + f"\n{foot}", fontsize=9)
    out = Path(path)
    fig.savefig(out)
    return out


# ------------------------------------------------------------------------------- U ramp
def plot_u_ramp(trace: RampTrace, path: str | Path, synthetic: bool = False) -> Path:
    """In-gap level depth and polaron moments against U along a ramp.

    Total energies at different U are not comparable (U changes the Hamiltonian), so they are
    not plotted; what a ramp is for is whether the polarons and their level survive as U is
    lowered.

    Returns
    -------
    Path
        The file written.
    """
    us = np.array([s.u for s in trace.steps])
    fig = _figure(figsize=(6.2, 5.2), dpi=150, layout="constrained")
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    depth = np.array([np.nan if s.level_depth is None else s.level_depth for s in trace.steps])
    ax1.plot(us, depth, "o-", color="tab:purple")
    for s in trace.steps:
        if not s.converged:
            y = s.level_depth if s.level_depth is not None else 0.0
            ax1.plot([s.u], [y], "x", color="red", ms=10)
    from polaronflow import naming

    for s in trace.steps:
        job = naming.parse_job_name(Path(s.path).name)
        if job is not None and job.role is naming.Role.RAMP_STATIC and s.level_depth is not None:
            # the static at the final U sits on the last relaxation's point: say which it is
            ax1.plot([s.u], [s.level_depth], "o", ms=11, mfc="none", mec="k", mew=0.8)
            ax1.annotate(
                "final static",
                (s.u, s.level_depth),
                textcoords="offset points",
                xytext=(-9, 6),
                ha="right",  # inward: the last point sits at the axis edge
                fontsize=7,
            )
    methods = sorted({s.level_method for s in trace.steps if s.level_method})
    # One method along the ramp; the DOS figure of a static may quote the DOS-peak depth.
    method = f"\n(method: {', '.join(methods)})" if methods else ""
    ax1.set_ylabel(f"in-gap level below CBM (eV){method}", fontsize=8)
    ax1.margins(x=0.06, y=0.12)
    ax1.grid(alpha=0.3)
    if np.all(np.isnan(depth)):
        ax1.text(
            0.5, 0.5, "no in-gap level at any U", transform=ax1.transAxes, ha="center", fontsize=8
        )
    # One curve per W ion that is a polaron at any step: its |m| along the ramp.
    ions = sorted({i for s in trace.steps for i in s.polaron_ions})
    for j, ion in enumerate(ions[:6]):
        vals = [
            abs(s.moments[s.polaron_ions.index(ion)]) if ion in s.polaron_ions else np.nan
            for s in trace.steps
        ]
        ax2.plot(us, vals, marker="os^vDP"[j % 6], ms=8 - j, lw=1.1, label=f"{trace.element}{ion}")
    if not ions:  # no polaron at any U: the largest moments show what happened instead
        for j in range(max((len(s.largest_moments) for s in trace.steps), default=0)):
            vals = [
                s.largest_moments[j] if len(s.largest_moments) > j else np.nan for s in trace.steps
            ]
            ax2.plot(us, vals, marker="os^v"[j % 4], lw=1.0, label=f"#{j + 1} largest |m|")
    ax2.set_ylabel(f"polaron {trace.element} |m| (μB)", fontsize=8)
    ax2.set_xlabel(f"U on {trace.element} (eV), in ramp order →", fontsize=8)
    ax2.grid(alpha=0.3)
    if ax2.get_legend_handles_labels()[0]:
        ax2.legend(fontsize=7, frameon=False, ncols=2)
    if len(us) > 1 and us[0] > us[-1]:
        ax1.invert_xaxis()  # shared x: the ramp reads left to right
    bad = " (x = unconverged)" if any(not s.converged for s in trace.steps) else ""
    fig.suptitle(_title(f"U ramp of {trace.system}{bad}", synthetic), fontsize=9)
    out = Path(path)
    fig.savefig(out)
    return out


# --------------------------------------------------------------------------- spin density
def find_chgcar(run: RunData) -> Path | None:
    """The run folder's CHGCAR (plain or .gz), if any."""
    folder = Path(str(run.path))
    if folder.is_file():
        folder = folder.parent
    for name in ("CHGCAR", "CHGCAR.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_magnetization_density(chgcar: str | Path):
    """(pymatgen Chgcar, magnetisation density as ρ·V values) of a spin-polarised CHGCAR.

    Raises
    ------
    RunReadError
        The CHGCAR holds no magnetisation (ISPIN = 1) or cannot be read.
    """
    from pymatgen.io.vasp import Chgcar

    from polaronflow.errors import RunReadError

    try:
        chg = Chgcar.from_file(str(chgcar))
    except Exception as exc:  # any parse failure: not a usable CHGCAR
        raise RunReadError(f"{chgcar}: unreadable CHGCAR ({type(exc).__name__}: {exc})") from exc
    if "diff" not in chg.data:
        raise RunReadError(
            f"{chgcar}: no magnetisation density (a spin-polarised run, ISPIN = 2, writes it "
            "as the CHGCAR's second dataset)"
        )
    diff = np.asarray(chg.data["diff"], dtype=float)
    if not np.all(np.isfinite(diff)):
        raise RunReadError(f"{chgcar}: non-finite values in the magnetisation density")
    return chg, diff


def write_spin_density(chgcar: str | Path, path: str | Path) -> Path:
    """The magnetisation density of a CHGCAR as a CHGCAR-format file that VESTA opens.

    The one dataset written is the spin density (up − down) in VASP's convention (ρ·V_cell),
    so VESTA shows it as "the" volumetric data (isosurfaces of ±level).
    """
    from pymatgen.io.vasp import Chgcar

    chg, diff = read_magnetization_density(chgcar)
    out = Path(path)
    Chgcar(chg.poscar, {"total": diff}).write_file(str(out))
    return out


def plot_spin_density(
    run: RunData,
    polarons: PolaronAnalysis,
    chgcar: str | Path,
    path: str | Path,
    half_width: float = 6.0,
    points: int = 161,
) -> Path:
    """The CHGCAR magnetisation density sliced through each polaron's plane (up to four).

    Each panel is the plane (the polaron's Miller plane, (100) when none was found) through
    the polaron site, ``half_width`` Å either way, interpolated (trilinear, periodic) from the
    CHGCAR grid; host-cation and O sites within 1 Å of the plane are drawn and labelled with
    their ion numbers.

    Returns
    -------
    Path
        The file written.
    """
    from scipy.ndimage import map_coordinates

    chg, diff = read_magnetization_density(chgcar)
    sites = polarons.polarons[:4]
    if not sites:
        raise ValueError(f"{run.path}: no polaron above {polarons.threshold} μB: no spin slice")
    lattice = np.asarray(chg.structure.lattice.matrix, dtype=float)
    volume = abs(float(np.linalg.det(lattice)))
    density = diff / volume  # μB/Å³
    grid = np.array(density.shape)
    frac = np.asarray(chg.structure.frac_coords, dtype=float)
    species = [s.specie.symbol for s in chg.structure]
    n = len(sites)
    fig = _figure(figsize=(3.9 * n + 1.2, 4.5), dpi=150, layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    t = np.linspace(-half_width, half_width, points)
    xx, yy = np.meshgrid(t, t)
    slices = []
    for site in sites:
        normal, u, v = _plane_axes(lattice, site.plane_hkl or [1, 0, 0])
        centre = frac[site.index] @ lattice
        cart = centre + xx[..., None] * u + yy[..., None] * v
        f = (cart.reshape(-1, 3) @ np.linalg.inv(lattice)) % 1.0
        idx = (f * grid).T
        vals = map_coordinates(density, idx, order=1, mode="grid-wrap").reshape(xx.shape)
        slices.append((site, normal, u, v, vals))
    vmax = max(float(np.max(np.abs(s[-1]))) for s in slices) or 1e-6
    image = None
    for ax, (site, normal, u, v, vals) in zip(axes, slices, strict=True):
        image = ax.imshow(
            vals,
            origin="lower",
            extent=(-half_width, half_width, -half_width, half_width),
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
        )
        vec = minimum_image_vectors(lattice, frac[site.index], frac)
        inplane = np.abs(vec @ np.stack([u, v]).T)
        near = (np.abs(vec @ normal) <= 1.0) & (np.max(inplane, axis=1) < half_width)
        for j in np.nonzero(near)[0]:
            x, y = vec[j] @ u, vec[j] @ v
            is_o = species[j] == "O"
            ax.plot(x, y, "o", ms=2.5 if is_o else 5, mfc="none", mec="0.2", mew=0.7)
            if not is_o:
                ax.annotate(
                    f"{species[j]}{j + 1}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=6,
                    color="0.1",
                )
        plane = site.plane or "(100)*"
        ax.set_title(f"{site.element}{site.ion} {site.moment:+.2f} μB, plane {plane}", fontsize=8)
        ax.set_xlabel("in-plane x (Å)", fontsize=8)
        ax.set_ylabel("in-plane y (Å)", fontsize=8)
        ax.tick_params(labelsize=7)
    if image is not None:
        cbar = fig.colorbar(image, ax=list(axes), shrink=0.85)
        cbar.set_label("magnetisation density (μB/Å³)", fontsize=8)
    fig.suptitle(
        _title(f"spin density of {_name(run)} (CHGCAR up − down)", run.synthetic)
        + "\nslices through each polaron site; open circles: O (small), cations (labelled)",
        fontsize=9,
    )
    out = Path(path)
    fig.savefig(out)
    return out


# ------------------------------------------------------------------------------ all of it
def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "system"


def write_report_plots(
    report: AnalysisReport,
    runs: Sequence[RunData],
    folder: str | Path,
    cation: str | None = None,
) -> list[Path]:
    """All figures a report allows: DOS, polaron map and spin density per run, U ramps.

    A figure with nothing to show is not written (a pristine host has no polaron map); the
    spin density needs a spin-polarised CHGCAR in the run folder.

    Parameters
    ----------
    report, runs
        The report and the runs it was made from (same order).
    folder
        Where the files go.
    cation
        The host cation the DOS is projected on (with O), as ``analyze --cation``; default
        the polaron analysis' cation, else the run's first element that is not O.

    Returns
    -------
    list of Path
        The files written (PNG figures and ``*_spin_density.vasp`` files).
    """
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()

    def stem(path: str) -> str:
        base = _safe(Path(path).name or "run")
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        return name

    for run, rep in zip(runs, report.runs, strict=True):
        name = stem(rep.path)
        el = cation if cation in run.species else None
        el = el or (rep.polarons.host_element if rep.polarons else None) or _cation_of(run)
        elements = (el, "O")
        if rep.electronic is not None and run.dos_energies is not None:
            written.append(
                plot_dos(run, rep.electronic, out_dir / f"{name}_dos.png", elements=elements)
            )
        pol = rep.polarons
        if pol is not None and pol.polarons and run.site_moments is not None:
            written.append(plot_polaron_map(run, pol, out_dir / f"{name}_polarons.png"))
            chgcar = find_chgcar(run)
            if chgcar is not None and run.ispin == 2:
                written.append(
                    plot_spin_density(run, pol, chgcar, out_dir / f"{name}_spin_density.png")
                )
                written.append(write_spin_density(chgcar, out_dir / f"{name}_spin_density.vasp"))
    for ramp in report.ramps:
        synthetic = any(r.synthetic for r in report.runs if r.path in {s.path for s in ramp.steps})
        written.append(
            plot_u_ramp(ramp, out_dir / f"u_ramp_{_safe(ramp.system)}.png", synthetic=synthetic)
        )
    return written


def _cation_of(run: RunData) -> str:
    """The first non-O element (for a DOS without a polaron analysis)."""
    return next((el for el in dict.fromkeys(run.species) if el != "O"), "O")
