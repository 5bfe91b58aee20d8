"""Lattice parameters and their changes: doped vs pristine cells, relaxed vs experiment.

Cells of different size are compared after dividing the larger one by its cell multiple
along a, b and c (a 2×2×2 supercell against the 32-atom cell: lengths ÷ 2, volume ÷ 8, angles
unchanged).  The multiple is the rounded length ratio unless given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from polaronflow.analysis.models import LatticeComparison, LatticeParameters
from polaronflow.analysis.rundata import RunData
from polaronflow.errors import InputError, RunQualityError

_KEYS = ("a", "b", "c", "alpha", "beta", "gamma", "volume")


def lattice_parameters(lattice: np.ndarray | Sequence[Sequence[float]]) -> LatticeParameters:
    """a, b, c (Å), α, β, γ (degrees) and volume (Å^3) of a (3, 3) row-vector lattice."""
    m = np.asarray(lattice, dtype=float)
    if m.shape != (3, 3):
        raise InputError(f"a lattice is a 3x3 matrix of row vectors, got shape {m.shape}")
    a, b, c = np.linalg.norm(m, axis=1)

    def angle(u: np.ndarray, v: np.ndarray) -> float:
        cos = float(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
        return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))

    return LatticeParameters(
        a=float(a),
        b=float(b),
        c=float(c),
        alpha=angle(m[1], m[2]),
        beta=angle(m[0], m[2]),
        gamma=angle(m[0], m[1]),
        volume=float(abs(np.linalg.det(m))),
    )


def run_lattice(run: RunData) -> LatticeParameters:
    """Lattice parameters of a run's final structure."""
    if run.lattice is None:
        raise RunQualityError(f"{run.path}: no final structure was read")
    return lattice_parameters(run.lattice)


def as_lattice_parameters(
    value: LatticeParameters | Mapping[str, float] | np.ndarray,
) -> LatticeParameters:
    """Lattice parameters from a model, a mapping (a, b, c[, angles]) or a 3×3 matrix."""
    if isinstance(value, LatticeParameters):
        return value
    if isinstance(value, Mapping):
        d = dict(value)
        missing = [k for k in ("a", "b", "c") if k not in d]
        if missing:
            raise InputError(f"reference lattice lacks {', '.join(missing)}")
        d.setdefault("alpha", 90.0)
        d.setdefault("beta", 90.0)
        d.setdefault("gamma", 90.0)
        if "volume" not in d:
            d["volume"] = _volume(d["a"], d["b"], d["c"], d["alpha"], d["beta"], d["gamma"])
        return LatticeParameters(**{k: float(d[k]) for k in _KEYS})
    return lattice_parameters(value)


def _volume(a: float, b: float, c: float, al: float, be: float, ga: float) -> float:
    ca, cb, cg = (np.cos(np.radians(x)) for x in (al, be, ga))
    return float(a * b * c * np.sqrt(1 - ca**2 - cb**2 - cg**2 + 2 * ca * cb * cg))


def compare_lattices(
    cell: LatticeParameters | Mapping[str, float] | np.ndarray,
    reference: LatticeParameters | Mapping[str, float] | np.ndarray,
    *,
    multiple: Sequence[int] | None = None,
    label: str = "cell vs reference",
) -> LatticeComparison:
    """Percent changes of a cell against a reference, at the same cell multiple.

    Parameters
    ----------
    cell
        The cell (lattice parameters, a mapping with a, b, c[, alpha, beta, gamma] or a 3×3
        matrix).
    reference
        The reference in the same forms (e.g. the experimental γ-WO3 lattice).
    multiple
        How many reference cells the cell spans along a, b, c; default the rounded length
        ratios.
    label
        What is compared, for the report.

    Returns
    -------
    LatticeComparison
        ``percent[k] = 100·(cell_k/multiple - ref_k)/ref_k`` (volume ÷ product of multiples).

    Raises
    ------
    InputError
        A cell that is not (close to) an integer multiple of the reference.
    """
    c = as_lattice_parameters(cell)
    r = as_lattice_parameters(reference)
    lengths = np.array([c.a, c.b, c.c])
    ref_lengths = np.array([r.a, r.b, r.c])
    if multiple is None:
        ratio = lengths / ref_lengths
        mult = np.maximum(np.round(ratio), 1).astype(int)
        if np.any(np.abs(ratio / mult - 1) > 0.15):
            raise InputError(
                f"{label}: cell lengths {lengths.round(3).tolist()} Å are not integer multiples "
                f"of the reference {ref_lengths.round(3).tolist()} Å; give the multiple"
            )
    else:
        mult = np.asarray(multiple, dtype=int)
        if mult.shape != (3,) or np.any(mult < 1):
            raise InputError(f"{label}: multiple must be three positive integers, got {multiple}")
    scaled = LatticeParameters(
        a=c.a / mult[0],
        b=c.b / mult[1],
        c=c.c / mult[2],
        alpha=c.alpha,
        beta=c.beta,
        gamma=c.gamma,
        volume=c.volume / float(np.prod(mult)),
    )
    percent = {k: 100.0 * (getattr(scaled, k) - getattr(r, k)) / getattr(r, k) for k in _KEYS}
    return LatticeComparison(
        label=label,
        cell=scaled,
        reference=r,
        multiple=[int(x) for x in mult],
        percent=percent,
        max_abs_length_percent=max(abs(percent[k]) for k in ("a", "b", "c")),
    )


def doped_vs_pristine(doped: RunData, pristine: RunData) -> LatticeComparison:
    """Lattice change of a doped run against the pristine run (scaled to the same multiple)."""
    return compare_lattices(
        run_lattice(doped),
        run_lattice(pristine),
        label=f"{doped.path} vs {pristine.path}",
    )


def relaxed_vs_experiment(
    run: RunData, experiment: LatticeParameters | Mapping[str, float]
) -> LatticeComparison:
    """A relaxed cell against an experimental lattice (e.g. γ-WO3 from the host provenance)."""
    return compare_lattices(run_lattice(run), experiment, label=f"{run.path} vs experiment")
