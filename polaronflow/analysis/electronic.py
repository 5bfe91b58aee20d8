"""Band edges, gaps by several methods, occupied in-gap states and the polaronic level.

With occupied in-gap states (polarons, localised f states) the highest occupied state is the
in-gap level, not the top of the host valence band, and E-fermi sits on the in-gap states (or,
with a fixed NUPDOWN, somewhere else entirely).  So nothing here trusts E-fermi: states are
classified by their occupations, per spin channel, and E-fermi is only used for the named
``gap_efermi`` / ``gap_dos`` numbers that reproduce what E-fermi-based tools report.

Method (``docs/analysis.md`` has the reasoning):

1. *Edges.*  A state counts as occupied when its occupation exceeds ``occ_tol`` (0.01; partly
   filled degenerate levels are occupied) and as empty otherwise.  VBM = highest occupied,
   CBM = lowest empty eigenvalue over both spins.
2. *Host valence band.*  Per spin, the occupied bands (k-weighted occupation > 0.5) are taken
   in band order; for each candidate count j = 1 … j_max of top bands the separation
   ``min(E[top j bands]) - max(E[band below])`` is computed.  The j with the largest separation
   wins if that separation exceeds ``margin`` (0.5 eV): those j bands are isolated occupied
   in-gap states and the band below them is the host valence-band top.  j_max is
   ``max_in_gap`` (8) but at most a third of the occupied bands, so a dense valence band is
   never mistaken for in-gap states.  A group of one spin must also lie ``margin`` above the
   host VBM of both spins, or it goes back to the host band as a whole.
3. *Level depth.*  (a) ``occupations``: CBM minus the k-weighted mean eigenvalue of the
   in-gap bands.  (b) ``dos-peak``: the largest peak of the (total or W+O-projected) DOS,
   summed over spins, between host VBM + margin and the midpoint of the highest occupied and
   lowest empty state, against the DOS conduction onset (the first energy above the valley
   that follows the highest occupied state where the DOS reaches ``onset_fraction`` (0.3) of
   the peak height).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from polaronflow.analysis.models import ElectronicAnalysis, InGapState, LevelDepth, SpinEdges
from polaronflow.analysis.rundata import RunData
from polaronflow.errors import RunQualityError

#: States with occupation above this count as occupied for the band edges.
DEFAULT_OCC_TOL = 0.01
#: Smallest separation from the host valence band for an in-gap state, eV.
DEFAULT_MARGIN = 0.5
#: Most top bands per spin tried as in-gap states.
DEFAULT_MAX_IN_GAP = 8
#: DOS conduction onset: first value above this fraction of the in-gap peak height.  A
#: sizeable fraction keeps the edge out of the far Gaussian tail (a tiny absolute tolerance
#: puts it 2-3 SIGMA into the gap); much more than ~0.3 fails when the conduction-band DOS
#: near its edge is small against a flat, full-weight in-gap band (small cells, coarse k).
DEFAULT_ONSET_FRACTION = 0.3
#: Relative tolerance of the E-fermi DOS gap, as pymatgen's ``Dos.get_gap`` (tol·mean DOS).
DOS_GAP_TOL = 1e-4


def _weights(run: RunData, nk: int) -> np.ndarray:
    w = run.kpoint_weights
    if w is None or len(w) != nk:
        return np.full(nk, 1.0 / nk)
    w = np.asarray(w, dtype=float)
    return w / w.sum()


def _in_gap_count(eig: np.ndarray, nocc: int, margin: float, max_in_gap: int) -> tuple[int, float]:
    """(j, separation): the number of isolated occupied top bands of one spin, or 0."""
    jmax = min(max_in_gap, nocc // 3)
    best_j, best_sep = 0, margin
    for j in range(1, jmax + 1):
        sep = float(eig[:, nocc - j : nocc].min() - eig[:, nocc - j - 1].max())
        if sep > best_sep:
            best_j, best_sep = j, sep
    return best_j, best_sep


def band_edges_from_eigenvalues(
    eigenvalues: np.ndarray, occupations: np.ndarray, occ_tol: float = DEFAULT_OCC_TOL
) -> tuple[float, float]:
    """(VBM, CBM) over all spins and k-points from occupations.

    Parameters
    ----------
    eigenvalues, occupations
        (nspin, nkpts, nbands) arrays, eV and 0..1.
    occ_tol
        Occupation above which a state is occupied (pymatgen uses 1e-8, which counts the
        Gaussian tails of empty states as occupied).

    Returns
    -------
    tuple
        ``(vbm, cbm)``, eV.

    Raises
    ------
    RunQualityError
        No occupied or no empty state (too few bands).
    """
    eig = np.asarray(eigenvalues, dtype=float)
    occ = np.asarray(occupations, dtype=float)
    filled = occ > occ_tol
    if not filled.any() or filled.all():
        raise RunQualityError("no empty bands (raise NBANDS) or no occupied states")
    return float(eig[filled].max()), float(eig[~filled].min())


def efermi_gap(eigenvalues: np.ndarray, efermi: float) -> float:
    """Gap with states split at E-fermi (all spins pooled), eV; 0 when E-fermi is in a band."""
    eig = np.asarray(eigenvalues, dtype=float)
    below, above = eig[eig <= efermi], eig[eig > efermi]
    if below.size == 0 or above.size == 0:
        return 0.0
    return max(float(above.min() - below.max()), 0.0)


def dos_gap(
    energies: np.ndarray, dos: np.ndarray, efermi: float, tol: float = DOS_GAP_TOL
) -> float:
    """Gap of a DOS around E-fermi, as pymatgen's ``Dos.get_gap`` computes it, eV.

    Parameters
    ----------
    energies
        (nedos,) energy grid, eV.
    dos
        (nspin, nedos) or (nedos,) DOS; spins are summed.
    efermi
        E-fermi, eV.
    tol
        Relative tolerance: the DOS counts as zero below ``tol`` × its mean.
    """
    e = np.asarray(energies, dtype=float)
    d = np.asarray(dos, dtype=float)
    d = d.sum(axis=0) if d.ndim == 2 else d
    thr = tol * d.sum() / d.shape[0]
    below = np.nonzero((e < efermi) & (d > thr))[0]
    above = np.nonzero((e > efermi) & (d > thr))[0]
    if below.size == 0 or above.size == 0:
        return 0.0
    v, c = int(below.max()), int(above.min())
    if v in (c, c - 1):
        return 0.0

    def cross(i0: int, i1: int) -> float:
        # Linear interpolation of the energy where the DOS crosses thr between two points.
        d0, d1 = d[i0], d[i1]
        if d1 == d0:
            return float(e[i0])
        return float(e[i0] + (thr - d0) * (e[i1] - e[i0]) / (d1 - d0))

    return max(cross(c - 1, c) - cross(v + 1, v), 0.0)


def analyze_electronic(
    run: RunData,
    *,
    occ_tol: float = DEFAULT_OCC_TOL,
    margin: float = DEFAULT_MARGIN,
    max_in_gap: int = DEFAULT_MAX_IN_GAP,
    onset_fraction: float = DEFAULT_ONSET_FRACTION,
    for_polarons: bool = True,
    dos_elements: Sequence[str] | None = None,
    expected_in_gap: int | None = None,
    find_in_gap: bool = True,
) -> ElectronicAnalysis:
    """Band edges, gaps, occupied in-gap states and the in-gap level depth of one run.

    Parameters
    ----------
    run
        A run with eigenvalues and occupations (and, for the DOS method, a DOS).
    occ_tol
        Occupation above which a state is occupied for the edges.
    margin
        Smallest separation between the host valence band and an in-gap state, eV.
    max_in_gap
        Most top bands per spin considered as in-gap states.
    onset_fraction
        DOS conduction onset threshold as a fraction of the in-gap DOS peak.
    for_polarons
        Refuse ISPIN = 1 runs (a polaron analysis needs spin polarisation).
    dos_elements
        Project the DOS method on these elements (e.g. ``["W", "O"]``) when the run holds a
        projected DOS; the total DOS otherwise.
    expected_in_gap
        Number of occupied in-gap states expected (e.g. polarons found); a warning is added
        when the count differs.
    find_in_gap
        Look for occupied in-gap states (a doped host).  False for phases that are not a
        host with a gap (references such as MgO or an O2 molecule): their isolated top bands
        are molecular levels or semicore states, not in-gap levels.

    Returns
    -------
    ElectronicAnalysis

    Raises
    ------
    RunQualityError
        ISPIN = 1 with ``for_polarons``, or no eigenvalues/occupations in the run.
    """
    if for_polarons and run.ispin != 2:
        raise RunQualityError(
            f"{run.path}: ISPIN = {run.ispin}: in-gap polaron levels need a spin-polarised run "
            "(ISPIN = 2)"
        )
    if run.eigenvalues is None or run.occupations is None:
        why = run.unavailable.get("eigenvalues") or (
            "not available (no vasprun.xml)"
            if "vasprun" not in run.files
            else "the vasprun.xml holds no eigenvalues"
        )
        raise RunQualityError(
            f"{run.path}: no eigenvalues/occupations: {why}; band edges and in-gap levels need "
            "the vasprun.xml (or an OUTCAR that lists eigenvalues, NWRITE >= 1)"
        )
    eig = np.asarray(run.eigenvalues, dtype=float)
    occ = np.asarray(run.occupations, dtype=float)
    if eig.ndim != 3 or eig.shape != occ.shape:
        raise RunQualityError(f"{run.path}: eigenvalue and occupation arrays do not match")
    nspin, nk, _ = eig.shape
    w = _weights(run, nk)
    try:
        vbm, cbm = band_edges_from_eigenvalues(eig, occ, occ_tol)
    except RunQualityError as exc:
        raise RunQualityError(f"{run.path}: {exc}") from None
    warnings: list[str] = []
    crossing = metal_bands(eig, occ)
    if crossing:
        return ElectronicAnalysis(
            path=str(run.path),
            synthetic=run.synthetic,
            ispin=run.ispin,
            efermi=run.efermi,
            vbm=None,
            host_vbm=None,
            cbm=None,
            gap_occupations=None,
            host_gap=None,
            metal=True,
            warnings=[
                f"metal: {len(crossing)} band(s) are occupied at some k-points and empty at "
                "others (they cross E-fermi): no gap and no in-gap level"
            ],
        )

    # Host valence band per spin (step 2 of the module docstring).
    band_occ = np.einsum("skb,k->sb", occ, w)
    counts, host_tops = [], []
    for s in range(nspin):
        nocc = int(np.sum(band_occ[s] > 0.5))
        filled = occ[s] > occ_tol
        top = float(eig[s][filled].max()) if filled.any() else float("-inf")
        j = 0
        if nocc >= 2 and find_in_gap:
            j, _ = _in_gap_count(eig[s], nocc, margin, max_in_gap)
        if j:
            top = float(eig[s, :, nocc - j - 1].max())
        counts.append((nocc, j))
        host_tops.append(top)
    host_vbm = max(host_tops)
    # An isolated group of one spin that does not clear the other spin's valence top by the
    # margin is not in the gap: the whole group goes back to the host band (never half of it,
    # which would leave a "host" band overlapping an "in-gap" one); repeat until stable.
    changed = True
    while changed:
        changed = False
        host_vbm = max(host_tops)
        for s in range(nspin):
            nocc, j = counts[s]
            if j and eig[s, :, nocc - j].min() <= host_vbm + margin:
                counts[s] = (nocc, 0)
                filled = occ[s] > occ_tol
                host_tops[s] = float(eig[s][filled].max())
                changed = True

    in_gap: list[InGapState] = []
    spins: list[SpinEdges] = []
    for s in range(nspin):
        nocc, j = counts[s]
        filled = occ[s] > occ_tol
        occ_top = float(eig[s][filled].max()) if filled.any() else float("nan")
        empty_bottom = float(eig[s][~filled].min()) if (~filled).any() else float("nan")
        for b in range(nocc - j, nocc):
            e_mean = float(eig[s, :, b] @ w)
            in_gap.append(
                InGapState(
                    spin=s,
                    band=b,
                    energy=e_mean,
                    energy_min=float(eig[s, :, b].min()),
                    energy_max=float(eig[s, :, b].max()),
                    occupation=float(band_occ[s, b]),
                    above_host_vbm=e_mean - host_vbm,
                    below_cbm=cbm - e_mean,
                )
            )
        spin_host = host_tops[s] if j == 0 else float(eig[s, :, nocc - j - 1].max())
        spins.append(
            SpinEdges(
                spin=s,
                occupied_top=occ_top,
                unoccupied_bottom=empty_bottom,
                host_vbm=spin_host,
                gap=empty_bottom - spin_host,
                n_in_gap=j,
            )
        )

    nupdown = run.parameters.get("NUPDOWN", run.incar.get("NUPDOWN"))
    nupdown = float(nupdown) if nupdown is not None and float(nupdown) >= 0 else None
    result = ElectronicAnalysis(
        path=str(run.path),
        synthetic=run.synthetic,
        ispin=run.ispin,
        nupdown=nupdown,
        efermi=run.efermi,
        spins=spins,
        vbm=vbm,
        host_vbm=host_vbm,
        cbm=cbm,
        gap_occupations=max(cbm - vbm, 0.0),
        host_gap=cbm - host_vbm,
        in_gap_states=in_gap,
    )

    if in_gap:
        ew = np.array([st.energy for st in in_gap])
        level = float(ew.mean())
        result.level_occupations = LevelDepth(
            method="occupations",
            level=level,
            cbm=cbm,
            depth=cbm - level,
            detail=(
                f"mean of {len(in_gap)} occupied in-gap band(s) "
                f"({ew.min():.3f}..{ew.max():.3f} eV) vs lowest empty state {cbm:.3f} eV"
            ),
        )
        result.level_dos = _dos_level(run, result, onset_fraction, dos_elements, warnings)
    if expected_in_gap is not None and expected_in_gap != len(in_gap):
        warnings.append(f"{len(in_gap)} occupied in-gap state(s) found, {expected_in_gap} expected")

    sigma = float(run.parameters.get("SIGMA", run.incar.get("SIGMA", 0.05)) or 0.05)
    if run.efermi is not None:
        ef = float(run.efermi)
        result.gap_efermi = efermi_gap(eig, ef)
        slack = max(2 * sigma, 0.01)
        occupied_above = bool(np.any((occ > 0.5) & (eig > ef + slack)))
        empty_below = bool(np.any((occ <= occ_tol) & (eig < ef - slack)))
        result.efermi_consistent = not (occupied_above or empty_below)
        if occupied_above:
            warnings.append(
                f"E-fermi {ef:.3f} eV lies below occupied states (up to {vbm:.3f} eV): "
                "E-fermi-based gaps and integrals are wrong for this run"
            )
        if empty_below:
            warnings.append(f"E-fermi {ef:.3f} eV lies above empty states")
        if run.dos_energies is not None and run.total_dos is not None:
            result.gap_dos = dos_gap(run.dos_energies, run.total_dos, ef)
    gaps = {
        "occupations": result.gap_occupations,
        "efermi": result.gap_efermi,
        "dos": result.gap_dos,
    }
    known = {k: v for k, v in gaps.items() if v is not None}
    listing = ", ".join(f"{k} {v:.3f}" for k, v in known.items())
    if in_gap:
        # Expected, not a disagreement: every one of these gaps ends at the in-gap level.
        warnings.append(
            f"occupied in-gap states: the VBM-based gaps ({listing} eV) end at the in-gap "
            f"level; the host gap is {result.host_gap:.3f} eV"
        )
    elif known and max(known.values()) - min(known.values()) > 0.1:
        warnings.append(f"gap methods disagree ({listing} eV)")
    if result.level_occupations and result.level_dos:
        diff = abs(result.level_occupations.depth - result.level_dos.depth)
        if diff > 0.2:
            warnings.append(
                f"level depth from occupations ({result.level_occupations.depth:.3f} eV) and "
                f"from the DOS peak ({result.level_dos.depth:.3f} eV) differ by {diff:.2f} eV"
            )
    result.warnings = warnings
    return result


def metal_bands(eigenvalues: np.ndarray, occupations: np.ndarray) -> list[tuple[int, int]]:
    """(spin, band) of the bands that cross E-fermi: occupied (> 0.5) at some k, empty at others.

    That is a Fermi surface, i.e. a metal.  A partly filled level at a single k-point (a
    degenerate in-gap level, a Γ-only cell) is not a crossing and is not called a metal.
    """
    occ = np.asarray(occupations, dtype=float)
    full = occ > 0.5
    cross = full.any(axis=1) & (~full).any(axis=1)  # (nspin, nbands)
    return [(int(s), int(b)) for s, b in zip(*np.nonzero(cross), strict=True)]


def projected_dos(run: RunData, elements: Sequence[str]) -> np.ndarray | None:
    """(nspin, nedos) DOS projected on the sites of ``elements`` (summed over orbitals)."""
    if run.pdos is None:
        return None
    mask = np.array([s in set(elements) for s in run.species])
    if not mask.any():
        return None
    return np.asarray(run.pdos)[mask].sum(axis=(0, 2))


def _character(run: RunData, index: int) -> dict[str, float] | None:
    """Element shares of the site-projected DOS at one grid point (None without PDOS)."""
    if run.pdos is None:
        return None
    at_point = np.asarray(run.pdos)[..., index].sum(axis=(1, 2))  # per site
    total = float(at_point.sum())
    if total <= 0:
        return None
    shares: dict[str, float] = {}
    for sp, w in zip(run.species, at_point, strict=False):
        shares[sp] = shares.get(sp, 0.0) + float(w) / total
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


class _DosCurve:
    """The summed-over-spins DOS that the DOS method reads, loaded by grid rows on demand.

    With ``dos_elements`` and projections in the files, the DOS projected on those elements:
    only the rows asked for, summed per element straight from the vasprun.xml ``<partial>``
    block (:func:`readers.open_partial`); when that windowed read does not apply (a DOSCAR,
    rows that are not plain fixed-width numbers, a run built in memory), from the full
    projected DOS (``run.pdos``, read by ``read_pdos`` if needed).  Without projections, the
    total DOS.  Rows not loaded are NaN and never used.
    """

    def __init__(self, run: RunData, dos_elements: Sequence[str] | None, n: int) -> None:
        self.run = run
        self.elements = list(dict.fromkeys(dos_elements or []))
        self.label = f"DOS projected on {'+'.join(dos_elements or [])}"
        self.n = n
        self.d = np.full(n, np.nan)
        self.loaded = (0, 0)
        self.sums: dict[str, np.ndarray] | None = None  # per element, loaded rows only
        self.index = None  # the <partial> index, opened at the first load
        wanted = set(self.elements)
        # The windowed read even when ``run.pdos`` was read (``--plots``): the same sums, so
        # the same numbers to the last bit with or without figures.
        self.windowed = bool(wanted and run.files and any(s in wanted for s in run.species))
        self.source = self.label
        if not self.windowed:
            self._use_full()

    def _use_full(self) -> None:
        run = self.run
        self.windowed, self.index, self.sums = False, None, None
        if self.elements and run.pdos is None and run.files:
            # One method whatever the caller asked to plot: the full projected DOS is read
            # here, lazily (only for runs with an in-gap level), when the files hold one.
            from polaronflow.analysis.readers import read_pdos
            from polaronflow.errors import RunReadError

            try:
                read_pdos(run)
            except RunReadError as exc:
                if "unreadable projected DOS" in str(exc):
                    raise  # a broken <partial> block: an error, not the total DOS instead
                # no projections in the files (LORBIT unset): the total DOS, so labelled
        dos = projected_dos(run, self.elements) if self.elements else None
        if dos is not None:
            self.source = self.label
        else:
            self.source = "total DOS"
            dos = np.asarray(run.total_dos, dtype=float)
        self.d = np.asarray(dos.sum(axis=0) if dos.ndim == 2 else dos, dtype=float)
        self.loaded = (0, self.n)

    def load(self, start: int, stop: int) -> np.ndarray:
        """The curve with at least rows [start, stop) filled in.

        Raises
        ------
        RunReadError
            A row in [start, stop) holds '****', NaN or Infinity (the same rows whichever
            way the curve was read): never a level from a non-number.
        """
        start, stop = max(0, start), min(self.n, stop)
        d = self._load(start, stop)
        bad = ~np.isfinite(d[start:stop])
        if bad.any():
            from polaronflow.errors import RunReadError

            e = np.asarray(self.run.dos_energies)
            where = e[start:stop][bad]
            f = self.run.files
            path = f.get("vasprun") or f.get("doscar") or self.run.path
            raise RunReadError(
                f"{path}: non-finite or overflowed value ('****', NaN or Infinity) in the "
                f"{self.source} at {len(where)} grid point(s) between {where.min():.3f} and "
                f"{where.max():.3f} eV, which the DOS level method reads"
            )
        return d

    def _load(self, start: int, stop: int) -> np.ndarray:
        lo, hi = self.loaded
        if not self.windowed or (lo <= start and stop <= hi):
            return self.d
        lo, hi = (start, stop) if hi <= lo else (min(lo, start), max(hi, stop))
        if self.index is None or not self.index.covers(lo, hi):
            from polaronflow.analysis.readers import open_partial

            # A gzipped file keeps only these rows as it streams past (opened again, for
            # more rows, only if the conduction onset lies beyond them).
            self.index = open_partial(self.run, rows=(lo, hi))
        sums = None if self.index is None else self.index.element_sums(self.run.species, lo, hi)
        if sums is None:
            # Not plain fixed-width rows after all: the full parse (and its errors) decides.
            self._use_full()
            return self.d
        self.sums = sums
        picked = [sums[el] for el in self.elements if el in sums]
        self.d = np.full(self.n, np.nan)
        self.d[lo:hi] = np.sum(picked, axis=0).sum(axis=0)
        self.loaded = (lo, hi)
        return self.d

    def character(self, index: int) -> dict[str, float] | None:
        """Element shares of the site-projected DOS at one grid row (None without PDOS)."""
        if self.sums is None:
            return _character(self.run, index)
        at_point = {el: float(v[:, index - self.loaded[0]].sum()) for el, v in self.sums.items()}
        total = sum(at_point.values())
        if total <= 0:
            return None
        shares = {el: w / total for el, w in at_point.items()}
        return dict(sorted(shares.items(), key=lambda kv: -kv[1]))


def _median(x: np.ndarray) -> float:
    """``np.median`` of a 1-d array without its NaN check (which imports ``numpy.ma``)."""
    s = np.sort(x)
    n = len(s)
    return float((s[(n - 1) // 2] + s[n // 2]) / 2)


def _dos_level(
    run: RunData,
    res: ElectronicAnalysis,
    onset_fraction: float,
    dos_elements: Sequence[str] | None,
    warnings: list[str],
) -> LevelDepth | None:
    if run.dos_energies is None or run.total_dos is None:
        return None
    e = np.asarray(run.dos_energies, dtype=float)
    occ_top = max(st.energy_max for st in res.in_gap_states)
    split = 0.5 * (occ_top + res.cbm)
    window = np.nonzero((e > res.host_vbm + DEFAULT_MARGIN) & (e < split))[0]
    if window.size == 0:
        warnings.append("the DOS grid has no point inside the gap: DOS method skipped")
        return None
    curve = _DosCurve(run, dos_elements, len(e))
    # Everything below reads the DOS from the window up: rows to 0.5 eV above the CBM first
    # (the conduction onset lies there in practice), the rest of the grid only if needed.
    k_cbm = int(np.searchsorted(e, res.cbm + 0.5))
    i_top = int(np.searchsorted(e, occ_top))
    d = curve.load(int(window[0]), max(k_cbm, i_top) + 2)
    peak = int(window[np.argmax(d[window])])
    height = float(d[peak])
    if height <= 0:
        warnings.append("no DOS peak inside the gap: DOS method skipped")
        return None
    # From the highest occupied state (other in-gap states may lie above the peak), walk
    # down to the valley before the conduction band, then up to the conduction onset.
    i = max(peak, i_top)
    while i + 1 < len(d) and d[i + 1] <= d[i] and e[i + 1] < res.cbm:
        i += 1
    thr = onset_fraction * height
    above = np.nonzero((np.arange(len(d)) > i) & (d > thr))[0]
    if above.size == 0 and curve.loaded[1] < len(e):
        d = curve.load(int(window[0]), len(e))
        above = np.nonzero((np.arange(len(d)) > i) & (d > thr))[0]
    if above.size == 0:
        warnings.append("no conduction-band onset in the DOS window: DOS method skipped")
        return None
    c = int(above[0])
    d0, d1 = d[c - 1], d[c]
    onset = (
        float(e[c - 1] + (thr - d0) * (e[c] - e[c - 1]) / (d1 - d0)) if d1 != d0 else float(e[c])
    )
    level = float(e[peak])
    step = _median(np.diff(e))
    if onset - level < step:
        # The peak and the conduction onset are not resolved on this grid (e.g. a relaxation
        # with VASP's default NEDOS): a depth here would be noise, possibly negative.
        warnings.append(
            f"DOS grid step {step:.3f} eV does not resolve the in-gap peak ({level:.3f} eV) from "
            f"the conduction onset ({onset:.3f} eV): DOS method skipped"
        )
        return None
    source = curve.source
    return LevelDepth(
        method="dos-peak",
        level=level,
        cbm=onset,
        depth=onset - level,
        character=curve.character(peak),
        detail=(
            f"{source}: in-gap peak {height:.2f} states/eV at {level:.3f} eV; conduction onset "
            f"where the DOS first exceeds {onset_fraction:g} × the peak ({onset:.3f} eV); "
            f"grid step {step:.3f} eV"
        ),
    )
