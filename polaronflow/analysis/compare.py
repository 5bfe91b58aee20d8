"""Two dopants side by side: in-gap level depth and polaron moments (the paper's Mg vs H2x)."""

from __future__ import annotations

from polaronflow.analysis.models import DopantComparison, ElectronicAnalysis, PolaronAnalysis


def _depths(el: ElectronicAnalysis | None) -> dict[str, float]:
    out: dict[str, float] = {}
    if el is None:
        return out
    for level in (el.level_occupations, el.level_dos):
        if level is not None:
            out[level.method] = level.depth
    return out


def _moments(pol: PolaronAnalysis | None) -> tuple[float | None, float | None]:
    if pol is None or not pol.polarons:
        return None, None
    mags = [abs(p.moment) for p in pol.polarons]
    return max(mags), sum(mags) / len(mags)


def compare_dopants(
    label_a: str,
    polarons_a: PolaronAnalysis | None,
    electronic_a: ElectronicAnalysis | None,
    label_b: str,
    polarons_b: PolaronAnalysis | None,
    electronic_b: ElectronicAnalysis | None,
) -> DopantComparison:
    """Level depths and central moments of case b against case a.

    Parameters
    ----------
    label_a, label_b
        Names of the two cases, e.g. ``"Mg"`` and ``"H2x"``.
    polarons_a, polarons_b
        Polaron analyses (the central moment is the largest polaron |m|).
    electronic_a, electronic_b
        Electronic analyses (depth per method).

    Returns
    -------
    DopantComparison
        ``central_moment_ratio_percent = 100·(b − a)/a`` and
        ``central_moment_deficit_percent = 100·(1 − a/b)`` (the paper's definition); depth
        differences b − a per method present in both.
    """
    da, db = _depths(electronic_a), _depths(electronic_b)
    ca, ma = _moments(polarons_a)
    cb, mb = _moments(polarons_b)
    ratio = 100.0 * (cb - ca) / ca if ca and cb is not None else None
    deficit = 100.0 * (1.0 - ca / cb) if cb and ca is not None else None
    return DopantComparison(
        label_a=label_a,
        label_b=label_b,
        depth_a=da,
        depth_b=db,
        central_moment_a=ca,
        central_moment_b=cb,
        central_moment_ratio_percent=ratio,
        central_moment_deficit_percent=deficit,
        mean_moment_a=ma,
        mean_moment_b=mb,
        depth_difference={k: db[k] - da[k] for k in da if k in db},
    )
