"""Figures: spin-resolved projected DOS, polaron maps and U-ramp traces (PNG).

matplotlib is imported inside the functions and only through its object-oriented API
(``matplotlib.figure.Figure`` with the Agg canvas), so importing this module is cheap and no
interactive backend is ever touched.  Titles start with "SYNTHETIC (emulator)" for emulator
output.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polaronflow.analysis.models import (
    AnalysisReport,
    ElectronicAnalysis,
    PolaronAnalysis,
    RampTrace,
)
from polaronflow.analysis.polarons import minimum_image_vectors
from polaronflow.analysis.rundata import RunData

SYNTHETIC_TITLE = "SYNTHETIC (emulator)"
_COLOURS = {"W": "tab:blue", "O": "tab:red", "total": "0.5"}


def _figure(*args: Any, **kwargs: Any):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(*args, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _title(text: str, synthetic: bool) -> str:
    return f"{SYNTHETIC_TITLE}: {text}" if synthetic else text


def plot_dos(
    run: RunData,
    electronic: ElectronicAnalysis,
    path: str | Path,
    elements: Sequence[str] = ("W", "O"),
    window: tuple[float, float] = (-3.0, 3.0),
) -> Path:
    """Spin-resolved DOS projected on ``elements`` with the in-gap level and the CBM marked.

    Parameters
    ----------
    run
        The run; its projected DOS is read on demand (``readers.read_pdos``) when absent.
    electronic
        Its electronic analysis (band edges and levels to mark).
    path
        PNG file to write.
    elements
        Elements to project on; the total DOS is drawn in grey behind them.
    window
        Energy range relative to (host VBM, CBM): from host VBM + window[0] to CBM + window[1].

    Returns
    -------
    Path
        The file written.
    """
    if run.dos_energies is None or run.total_dos is None:
        raise ValueError(f"{run.path}: no DOS to plot")
    if run.pdos is None and run.files:
        try:
            from polaronflow.analysis.readers import read_pdos

            read_pdos(run)
        except Exception:  # no projections in the files: plot the total DOS only
            pass
    e = np.asarray(run.dos_energies, dtype=float)
    tdos = np.asarray(run.total_dos, dtype=float)
    lo, hi = electronic.host_vbm + window[0], electronic.cbm + window[1]
    sel = (e >= lo) & (e <= hi)
    fig = _figure(figsize=(8.0, 4.2), dpi=150)
    ax = fig.add_subplot()
    nspin = tdos.shape[0]
    signs = (1.0, -1.0)
    for s in range(nspin):
        label = "total" if s == 0 else None
        ax.fill_between(
            e[sel], 0, signs[s] * tdos[s][sel], color="0.85", lw=0, label=label, zorder=1
        )
        if run.pdos is not None:
            pdos = np.asarray(run.pdos)
            for el in elements:
                mask = np.array([sp == el for sp in run.species])
                if not mask.any():
                    continue
                curve = pdos[mask][:, s].sum(axis=(0, 1))
                ax.plot(
                    e[sel],
                    signs[s] * curve[sel],
                    color=_COLOURS.get(el, None),
                    lw=1.1,
                    label=f"{el}" if s == 0 else None,
                    zorder=3,
                )
    ymax = float(np.max(np.abs(tdos[:, sel]))) if sel.any() else 1.0
    # Scale to the in-gap peak and the conduction-band edge: the O 2p valence band would
    # otherwise dwarf the level the figure is about.
    in_gap = (e > electronic.host_vbm + 0.2) & (e < electronic.cbm - 0.05)
    cb_edge = (e >= electronic.cbm - 0.05) & (e <= electronic.cbm + 1.0)
    gap_peak = float(np.max(np.abs(tdos[:, in_gap]))) if in_gap.any() else 0.0
    cb_peak = float(np.max(np.abs(tdos[:, cb_edge]))) if cb_edge.any() else 0.0
    ylim = 1.25 * max(3.0 * gap_peak, cb_peak) if gap_peak > 0 else 0.5 * ymax
    ylim = max(ylim, 1e-3)
    ax.set_ylim(-ylim if nspin == 2 else 0, ylim)
    ax.axhline(0, color="k", lw=0.6)
    ax.axvline(electronic.host_vbm, color="k", ls=":", lw=1, label="host VBM")
    ax.axvline(electronic.cbm, color="tab:green", ls="--", lw=1.2, label="CBM")
    if electronic.level_occupations is not None:
        lvl = electronic.level_occupations
        ax.axvline(
            lvl.level, color="tab:purple", ls="--", lw=0.9, alpha=0.7, label="in-gap level (occ.)"
        )
        ax.annotate(
            "",
            xy=(lvl.level, 0.78 * ylim),
            xytext=(electronic.cbm, 0.78 * ylim),
            arrowprops={"arrowstyle": "<->", "color": "tab:purple"},
        )
        ax.text(
            0.5 * (lvl.level + electronic.cbm),
            0.81 * ylim,
            f"{lvl.depth:.2f} eV below CBM",
            ha="center",
            va="bottom",
            fontsize=8,
            color="tab:purple",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0},
        )
    if electronic.level_dos is not None:
        # Markers, not lines: the DOS-method level and edge must not hide the peak itself.
        ld = electronic.level_dos
        ax.plot([ld.level], [0.93 * ylim], "v", color="tab:orange", ms=7, label="DOS peak")
        ax.plot([ld.cbm], [0.93 * ylim], "v", color="tab:olive", ms=7, label="DOS CB onset")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("energy (eV)")
    ax.set_ylabel("DOS (states/eV)   ↑ up  /  ↓ down" if nspin == 2 else "DOS (states/eV)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title(_title(f"DOS of {Path(str(run.path)).name}", run.synthetic), fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    return out


def plot_polaron_map(
    run: RunData, polarons: PolaronAnalysis, path: str | Path, slab: float = 1.2
) -> Path:
    """Moments on the host-cation sites of each polaron's plane, around the dopant.

    One panel per polaron (up to four): the cation sites within ``slab`` Å of the plane through
    the polaron centre (normal = its Miller plane, (100) when none was found) drawn in in-plane
    coordinates relative to the centre; colour = signed moment, size = |m|; the dopant's
    projection is marked.

    Returns
    -------
    Path
        The file written.
    """
    if run.lattice is None or run.frac_coords is None or run.site_moments is None:
        raise ValueError(f"{run.path}: a polaron map needs a structure and site moments")
    lattice = np.asarray(run.lattice, dtype=float)
    frac = np.asarray(run.frac_coords, dtype=float)
    moments = np.asarray(run.site_moments, dtype=float)
    cations = np.array([i for i, s in enumerate(run.species) if s == polarons.host_element])
    sites = polarons.polarons[:4] or []
    n = max(len(sites), 1)
    fig = _figure(figsize=(4.4 * n + 1.0, 4.8), dpi=150, layout="constrained")
    vmax = max(float(np.max(np.abs(moments[cations]))) if cations.size else 1.0, 0.05)
    scatter = None
    recip = np.linalg.inv(lattice).T
    for k, site in enumerate(sites):
        ax = fig.add_subplot(1, n, k + 1)
        hkl = site.plane_hkl or [1, 0, 0]
        normal = np.asarray(hkl, dtype=float) @ recip
        normal /= np.linalg.norm(normal)
        u = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [0.0, 1.0, 0.0])
        u /= np.linalg.norm(u)
        v = np.cross(normal, u)
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
            s=40 + 900 * np.abs(m) / vmax,
            edgecolors="k",
            linewidths=0.5,
            zorder=2,
        )
        for (x, y), mm in zip(xy, m, strict=True):
            if abs(mm) >= 0.02:
                big = abs(mm) > 0.5 * vmax  # inside its own (large, dark) marker
                ax.annotate(
                    f"{mm:+.2f}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(0, 0) if big else (0, -15),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if big else "black",
                    zorder=4,
                )
        dopant_note = ""
        if site.dopant_index is not None:
            dv = minimum_image_vectors(lattice, frac[site.index], frac[[site.dopant_index]])[0]
            ax.scatter([dv @ u], [dv @ v], marker="X", s=140, c="tab:green", zorder=3)
            dopant_note = (
                f"\n✕ = {site.dopant_element} projected ({dv @ normal:+.1f} Å off the plane)"
            )
        shell = f", shell {site.shell}, d = {site.distance_to_dopant:.2f} Å" if site.shell else ""
        plane = site.plane or "(100) [no plane found]"
        ax.set_title(
            f"{site.element}{site.index} {site.moment:+.2f} μB{shell}\nplane {plane}{dopant_note}",
            fontsize=8,
        )
        ax.set_aspect("equal")
        ax.set_xlabel("in-plane x (Å)")
        ax.set_ylabel("in-plane y (Å)")
        ax.grid(alpha=0.2)
    if not sites:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no polaron above threshold", ha="center", va="center")
        ax.set_axis_off()
    if scatter is not None:
        cbar = fig.colorbar(scatter, ax=fig.axes, shrink=0.8)
        cbar.set_label("site moment (μB)")
    fig.suptitle(_title(f"polarons in {Path(str(run.path)).name}", run.synthetic), fontsize=10)
    out = Path(path)
    fig.savefig(out, bbox_inches="tight")
    return out


def plot_u_ramp(trace: RampTrace, path: str | Path, synthetic: bool = False) -> Path:
    """Energy and the largest host-cation moments against U along a ramp.

    Returns
    -------
    Path
        The file written.
    """
    us = np.array([s.u for s in trace.steps])
    fig = _figure(figsize=(6.0, 5.0), dpi=150)
    ax1 = fig.add_subplot(2, 1, 1)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    energies = [s.energy for s in trace.steps]
    ok = [e is not None for e in energies]
    ax1.plot(us[ok], [e for e in energies if e is not None], "o-", color="tab:blue")
    for s in trace.steps:
        if not s.converged and s.energy is not None:
            ax1.plot([s.u], [s.energy], "x", color="red", ms=10)
    ax1.set_ylabel("final energy (eV)")
    ax1.grid(alpha=0.3)
    nmax = max((len(s.largest_moments) for s in trace.steps), default=0)
    for j in range(nmax):
        vals = [s.largest_moments[j] if len(s.largest_moments) > j else np.nan for s in trace.steps]
        # Decreasing marker sizes keep coinciding curves (equal polarons) visible.
        ax2.plot(
            us, vals, marker="os^v"[j % 4], ms=9 - 1.5 * j, lw=1.2, label=f"#{j + 1} largest |m|"
        )
    ax2.set_ylabel(f"{trace.element} |m| (μB)")
    ax2.set_xlabel(f"U on {trace.element} d (eV), in ramp order →")
    ax2.grid(alpha=0.3)
    if nmax:
        ax2.legend(fontsize=7, frameon=False)
    if len(us) > 1 and us[0] > us[-1]:
        ax1.invert_xaxis()  # shared x: the ramp reads left to right
    ax1.set_title(_title(f"U ramp of {trace.system}", synthetic), fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    return out


def write_report_plots(
    report: AnalysisReport, runs: Sequence[RunData], folder: str | Path
) -> list[Path]:
    """All figures a report allows: DOS and polaron map per run, one trace per U ramp.

    Returns
    -------
    list of Path
        The PNG files written.
    """
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()

    def stem(path: str) -> str:
        base = Path(path).name or "run"
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        return name

    for run, rep in zip(runs, report.runs, strict=True):
        name = stem(rep.path)
        if rep.electronic is not None and run.dos_energies is not None:
            written.append(plot_dos(run, rep.electronic, out_dir / f"{name}_dos.png"))
        if rep.polarons is not None and run.site_moments is not None:
            written.append(plot_polaron_map(run, rep.polarons, out_dir / f"{name}_polarons.png"))
    for k, ramp in enumerate(report.ramps):
        synthetic = any(r.synthetic for r in report.runs if r.formula == ramp.system)
        written.append(plot_u_ramp(ramp, out_dir / f"u_ramp_{k + 1}.png", synthetic=synthetic))
    return written
