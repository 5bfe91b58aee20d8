"""Detect what run folders hold and assemble an analysis report (``AnalysisReport``).

Per folder: relaxation or static (NSW/IBRION), doped or not (elements outside the host), the
polaron and electronic analyses when the run is spin-polarised.  Across folders: lattice
changes of doped cells against the pristine one, U ramps (runs of one system that differ only
in U on the host cation), the paper's reactions when their runs are present, and a dopant
comparison when two dopants are present.

Bad input raises the project's errors; with ``partial=True`` the failing part is skipped, the
reason recorded and the report marked partial.  Nothing here imports pymatgen or matplotlib.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise, product
from pathlib import Path
from typing import Any

from polaronflow import naming
from polaronflow.analysis.compare import compare_dopants
from polaronflow.analysis.electronic import analyze_electronic
from polaronflow.analysis.models import (
    AnalysisReport,
    ConfigurationRank,
    ConfigurationRanking,
    LatticeParameters,
    RampStep,
    RampTrace,
    RunReport,
    SpeciesBlock,
)
from polaronflow.analysis.polarons import DEFAULT_THRESHOLD, analyze_polarons
from polaronflow.analysis.rundata import RunData
from polaronflow.analysis.structure import compare_lattices, lattice_parameters
from polaronflow.analysis.thermo import (
    PRESET_REACTIONS,
    composition_of,
    consistency_problems,
    formula_units,
    parse_reaction,
    reaction_energy,
    u_by_block,
    u_by_element,
)
from polaronflow.errors import InputError, MismatchError, PolaronflowError, RunQualityError


@dataclass
class AnalysisOptions:
    """Options of :func:`analyze_runs` (the CLI flags of ``polaronflow analyze``)."""

    host_element: str = "W"
    host_elements: tuple[str, ...] | None = None
    dopant: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    partial: bool = False
    allow_mismatch: bool = False
    temperature: float | None = 298.15
    p_o2: float | None = 0.21
    temperature_term: str | None = None
    experiment: Mapping[str, float] | None = None
    #: electrons expected to localise in each doped run (None: from the dopants and NELECT).
    electrons: float | None = None
    reactions: Sequence[str] = field(default_factory=lambda: list(PRESET_REACTIONS))
    #: reactions the user asked for: an error (not a silent skip) when runs are missing.
    extra_reactions: Sequence[str] = ()

    @property
    def hosts(self) -> set[str]:
        return set(self.host_elements or (self.host_element, "O"))


def formula_of(species: Iterable[str]) -> str:
    """Formula in order of first appearance, e.g. ``'MgW64O192'``."""
    comp = composition_of(list(species))
    return "".join(f"{el}{int(n) if n != 1 else ''}" for el, n in comp.items())


def run_kind(run: RunData) -> str:
    """``'relaxation'`` when ions moved (NSW > 0 and IBRION in 1, 2, 3), else ``'static'``."""
    p = {**run.incar, **run.parameters}
    nsw = int(p.get("NSW", 0) or 0)
    ibrion = int(p.get("IBRION", -1 if nsw == 0 else 0) or 0)
    return "relaxation" if nsw > 0 and ibrion in (1, 2, 3) else "static"


def _fail_or_record(exc: PolaronflowError, opts: AnalysisOptions, sink: list[str]) -> None:
    if not opts.partial:
        if "--partial" not in str(exc) and "--allow-unconverged" not in str(exc):
            # Say which option helps: the other runs can still be analysed.
            raise type(exc)(f"{exc} (--partial analyses the rest and marks this)") from None
        raise exc
    sink.append(str(exc))


def species_blocks(run: RunData) -> list[SpeciesBlock]:
    """The run's POTCAR species blocks with U, LDAUL, POTCAR title and ZVAL each."""
    blocks = run.blocks()
    us = u_by_block(run)
    titles = run.potcars if len(run.potcars) == len(blocks) else [None] * len(blocks)
    zvals = run.zval if len(run.zval) == len(blocks) else [None] * len(blocks)
    return [
        SpeciesBlock(element=el, sites=n, u=u, ldaul=lval, potcar=title, zval=z)
        for (el, n), (_, u, lval), title, z in zip(blocks, us, titles, zvals, strict=True)
    ]


def job_of(run: RunData) -> naming.JobName | None:
    """The campaign job a run folder is named after (None: not a campaign folder name)."""
    return naming.parse_job_name(Path(str(run.path)).name)


def analyze_run(
    run: RunData, opts: AnalysisOptions | None = None, *, electrons_everywhere: bool = False
) -> RunReport:
    """What one run holds and what the polaron and electronic analyses find in it.

    Parameters
    ----------
    run
        A run read by :func:`polaronflow.analysis.readers.read_run`.
    opts
        Analysis options; ``opts.partial`` turns failures into recorded problems.
    electrons_everywhere
        Apply ``opts.electrons`` to this run even without dopant sites (no run of the set
        has any: the electrons come from NELECT or a vacancy).

    Raises
    ------
    RunQualityError
        Unconverged or truncated run, ISPIN 1, no site moments (unless ``opts.partial``).
    """
    opts = opts or AnalysisOptions()
    species = list(run.species)
    doped = (
        any(s not in opts.hosts for s in species)
        if opts.dopant is None
        else (opts.dopant in species)
    )
    job = job_of(run)
    energy = run.final_energy_sigma0 if run.final_energy_sigma0 is not None else run.final_energy
    rep = RunReport(
        path=str(run.path),
        synthetic=run.synthetic,
        formula=formula_of(species) or "?",
        kind=run_kind(run),
        role=str(job.role) if job else None,
        doped=doped,
        functional=run.functional,
        u_values=u_by_element(run),
        species_blocks=species_blocks(run),
        ispin=run.ispin,
        converged=run.converged,
        energy=energy,
        energy_per_atom=energy / len(species) if energy is not None and species else None,
        lattice=lattice_parameters(run.lattice) if run.lattice is not None else None,
        problems=list(run.problems),
        unavailable=dict(run.unavailable),
    )
    errors: list[str] = []
    if not run.converged:
        # The reader's problems already name the file; say only what is wrong.
        why = "; ".join(run.problems) or f"{run.path}: the run did not finish or converge"
        if not opts.partial:
            raise RunQualityError(f"{why} (use --partial to analyse it anyway)")
        rep.partial = True
    if opts.host_element in species and run.site_moments is None and "outcar" not in run.files:
        # A missing file is not a failed analysis: say what is missing and go on.
        rep.unavailable["polarons"] = (
            "not available (no OUTCAR: site moments are read from its magnetization table; "
            "put the run's OUTCAR in the folder)"
        )
    elif opts.host_element in species:
        try:
            # A dopant named on the command line but absent here (the pristine run, the
            # references) means "no dopant", not "every foreign element".
            dopant = opts.dopant if opts.dopant is None or opts.dopant in species else []
            rep.polarons = analyze_polarons(
                run,
                host_element=opts.host_element,
                host_elements=opts.host_elements,
                dopant=dopant,
                threshold=opts.threshold,
                electrons=opts.electrons if (doped or electrons_everywhere) else None,
            )
        except PolaronflowError as exc:
            _fail_or_record(exc, opts, errors)
    expected = rep.polarons.polaron_count if rep.polarons else None
    if run.eigenvalues is None:
        # Not a failure: an OUTCAR-only run (the usual form of a published polaron run)
        # still has its polarons; the electronic part is marked, with the reason.
        rep.unavailable["electronic"] = run.unavailable.get(
            "eigenvalues",
            "not available (no vasprun.xml)"
            if "vasprun" not in run.files
            else "not available (the vasprun.xml holds no eigenvalues)",
        )
    else:
        try:
            rep.electronic = analyze_electronic(
                run,
                for_polarons=opts.host_element in species,
                dos_elements=[opts.host_element, "O"],
                expected_in_gap=expected,
                find_in_gap=opts.host_element in species,
            )
        except PolaronflowError as exc:
            _fail_or_record(exc, opts, errors)
    if errors:
        rep.problems.extend(e for e in errors if e not in rep.problems)
        rep.partial = True
    return rep


def detect_ramps(
    runs: Sequence[RunData],
    element: str = "W",
    reports: Sequence[RunReport] | None = None,
) -> list[RampTrace]:
    """Chains of runs of one system that differ in U on ``element``.

    Runs named after campaign jobs (:mod:`polaronflow.naming`) are grouped by their system
    tag (``mg``, ``h2-c2``): the ramp steps and the static at the final U.  Other runs are
    grouped by formula and functional.  The steps keep the order the folders were given in
    when U is monotonic along it; otherwise they are sorted by decreasing U (the paper ramps
    9 → 5 eV).  With ``reports`` (the per-run analyses, same order as ``runs``) each step
    carries the in-gap level depth and the polaron moments.
    """
    rep_of = dict(zip((id(r) for r in runs), reports or [], strict=False))
    groups: dict[tuple[str, str | None], list[RunData]] = {}
    for run in runs:
        if element not in run.species:
            continue
        job = job_of(run)
        if (
            job is not None
            and job.system
            and job.role
            in (
                naming.Role.RAMP_STEP,
                naming.Role.RAMP_STATIC,
            )
        ):
            key = (job.system, "campaign")
        elif job is not None:
            continue  # pristine cells, references: not a ramp
        else:
            key = (formula_of(run.species), run.functional)
        groups.setdefault(key, []).append(run)
    traces = []
    for (name, _source), members in groups.items():
        us = [u_by_element(r).get(element, 0.0) for r in members]
        if len(set(us)) < 2:
            continue
        pairs = list(zip(us, members, strict=True))
        diffs = [b - a for a, b in pairwise(us)]
        if not (all(d < 0 for d in diffs) or all(d > 0 for d in diffs)):
            pairs.sort(
                key=lambda p: (
                    -p[0],
                    job_of(p[1]) is not None and job_of(p[1]).role is naming.Role.RAMP_STATIC,
                )
            )
        steps = []
        for u, r in pairs:
            mags = (
                sorted(
                    (
                        abs(float(m))
                        for m, s in zip(r.site_moments, r.species, strict=False)
                        if s == element
                    ),
                    reverse=True,
                )
                if r.site_moments is not None
                else []
            )
            energy = r.final_energy_sigma0 if r.final_energy_sigma0 is not None else r.final_energy
            step = RampStep(
                path=str(r.path),
                u=u,
                energy=energy,
                largest_moments=mags[:4],
                converged=r.converged,
            )
            rr = rep_of.get(id(r))
            if rr is not None and rr.polarons is not None:
                step.moments = [p.moment for p in rr.polarons.polarons]
                step.polaron_ions = [p.ion for p in rr.polarons.polarons]
            if rr is not None and rr.electronic is not None:
                # One method along the whole ramp: relaxation steps rarely have a DOS grid
                # fine enough for the DOS method, every step has eigenvalues.
                level = rr.electronic.level_occupations
                if level is not None:
                    step.level_depth, step.level_method = level.depth, level.method
            steps.append(step)
        traces.append(RampTrace(system=name, element=element, steps=steps))
    return traces


def _match_reaction_runs(text: str, runs: Sequence[RunData]) -> dict[str, RunData] | None:
    """Runs for every formula of a reaction; None when a formula has no run.

    Among several candidates per formula (a U ramp, repeated references) the first
    combination without consistency problems wins, later folders first; if every combination
    has problems the latest folders are returned so that the error names them.
    """
    reactants, products = parse_reaction(text)
    formulas = list(dict.fromkeys([*reactants, *products]))
    candidates: list[list[RunData]] = []
    for formula in formulas:
        found = []
        for run in runs:
            try:
                formula_units(composition_of(list(run.species)), formula)
            except PolaronflowError:
                continue
            found.append(run)
        if not found:
            return None
        candidates.append(found[::-1])
    first = None
    for k, combo in enumerate(product(*candidates)):
        chosen = dict(zip(formulas, combo, strict=True))
        first = first or chosen
        if not consistency_problems(chosen):
            return chosen
        if k >= 255:  # enough: report the latest folders' problems
            break
    return first


def rank_configurations(
    runs: Sequence[RunData], reports: Sequence[RunReport]
) -> list[ConfigurationRanking]:
    """Rank the final statics of each dopant that has several (names from polaronflow.naming).

    A group is the ``T-static`` runs of one dopant label with the same formula (polaron
    configurations ``-c<k>``, spin states ``-nupdown<N>``, a search's selected candidates);
    ΔE is the energy above the group's lowest (eV). Screening runs are not statics.
    """
    groups: dict[tuple[str, str], list[tuple[RunData, RunReport, naming.JobName]]] = {}
    for run, rep in zip(runs, reports, strict=True):
        job = naming.parse_job_name(Path(str(run.path)).name)
        if job is None or job.role is not naming.Role.RAMP_STATIC or job.label is None:
            continue
        if rep.energy is None:
            continue
        formula = "".join(f"{el}{n}" for el, n in sorted(Counter(run.species).items()))
        groups.setdefault((job.label, formula), []).append((run, rep, job))
    rankings = []
    for (label, _), members in sorted(groups.items()):
        if len(members) < 2:
            continue
        members.sort(key=lambda m: m[1].energy)
        lowest = members[0][1].energy
        rows = []
        for run, rep, job in members:
            pol = rep.polarons.polarons if rep.polarons is not None else []
            rows.append(
                ConfigurationRank(
                    run=str(run.path),
                    energy=rep.energy,
                    delta_e=rep.energy - lowest,
                    ground_state=rep is members[0][1],
                    nupdown=job.nupdown,
                    total_moment=None if rep.polarons is None else rep.polarons.total_moment,
                    polaron_ions=[p.ion for p in pol],
                    shells=[p.shell for p in pol],
                    moments=[p.moment for p in pol],
                )
            )
        rankings.append(ConfigurationRanking(label=label, runs=rows))
    return rankings


def analyze_runs(
    runs: Sequence[RunData],
    opts: AnalysisOptions | None = None,
    *,
    read_errors: Sequence[str] = (),
) -> AnalysisReport:
    """The whole report for a set of runs (see module docstring).

    Parameters
    ----------
    runs
        Runs read from the folders.
    opts
        Analysis options.
    read_errors
        Folders that could not be read (only with ``opts.partial``); they mark the report
        partial.

    Raises
    ------
    PolaronflowError
        Any failure when ``opts.partial`` is False.
    """
    opts = opts or AnalysisOptions()
    report = AnalysisReport(
        synthetic=any(r.synthetic for r in runs),
        errors=list(read_errors),
        partial=bool(read_errors),
    )
    any_doped = any(_is_doped(r, opts) for r in runs)
    for run in runs:
        rep = analyze_run(run, opts, electrons_everywhere=not any_doped)
        report.runs.append(rep)
        report.partial |= rep.partial

    usable = [r for r, rep in zip(runs, report.runs, strict=True) if r.lattice is not None]
    # The pristine host holds the host cation (an O2 box is made of host elements too, but
    # it is a reference, not the host); campaign folders say which run is which by name.
    pristine = [r for r in usable if _is_pristine(r, opts)]
    pristine.sort(key=_pristine_rank)
    for run in usable:
        if not _is_doped(run, opts) or opts.host_element not in run.species:
            continue
        same_xc = [p for p in pristine if p.functional == run.functional]
        # Prefer the pristine run with the same U (a ramp step against its own U).
        same_u = [p for p in same_xc if u_by_element(p) == u_by_element(run)]
        for ref in same_u or same_xc:
            try:
                report.lattice_changes.append(
                    compare_lattices(run.lattice, ref.lattice, label=f"{run.path} vs {ref.path}")
                )
                break
            except InputError as exc:
                if ref is (same_u or same_xc)[-1]:
                    _fail_or_record(exc, opts, report.errors)
    if opts.experiment is not None:
        for ref in pristine:
            try:
                report.lattice_changes.append(
                    compare_lattices(
                        ref.lattice, opts.experiment, label=f"{ref.path} vs experiment"
                    )
                )
            except InputError as exc:
                _fail_or_record(exc, opts, report.errors)

    report.ramps = detect_ramps(runs, opts.host_element, report.runs)
    report.configurations = rank_configurations(runs, report.runs)

    asked = set(opts.extra_reactions)
    for name in [*opts.reactions, *opts.extra_reactions]:
        text = PRESET_REACTIONS.get(name, name)
        try:
            matched = _match_reaction_runs(text, runs)
        except InputError as exc:
            _fail_or_record(exc, opts, report.errors)
            continue
        if matched is None:
            if name in asked:
                _fail_or_record(
                    InputError(f"reaction {text!r}: no run folder matches every formula"),
                    opts,
                    report.errors,
                )
            continue
        try:
            report.reactions.append(
                reaction_energy(
                    text,
                    matched,
                    temperature=opts.temperature,
                    p_o2=opts.p_o2,
                    temperature_term=opts.temperature_term,
                    allow_mismatch=opts.allow_mismatch,
                )
            )
        except (MismatchError, InputError, RunQualityError) as exc:
            _fail_or_record(exc, opts, report.errors)

    # One run per dopant for the comparison: the final static (campaign role, else any
    # static), converged runs first; the comparison names the runs it used.
    by_dopant: dict[str, list[RunReport]] = {}
    for rep in report.runs:
        if rep.doped and rep.polarons and rep.polarons.dopant_elements:
            label = formula_of(rep.polarons.dopant_elements)
            by_dopant.setdefault(label, []).append(rep)
    chosen = {k: min(v, key=_comparison_rank) for k, v in by_dopant.items()}
    labels = sorted(chosen, key=lambda k: (k.startswith("H"), k))
    for b in labels[1:]:
        a = labels[0]
        ra, rb = chosen[a], chosen[b]
        cmp = compare_dopants(a, ra.polarons, ra.electronic, b, rb.polarons, rb.electronic)
        cmp.run_a, cmp.run_b = ra.path, rb.path
        report.comparisons.append(cmp)
    report.partial |= bool(report.errors)
    return report


def _is_doped(run: RunData, opts: AnalysisOptions) -> bool:
    if opts.dopant is not None:
        return opts.dopant in run.species
    return any(s not in opts.hosts for s in run.species)


def _is_pristine(run: RunData, opts: AnalysisOptions) -> bool:
    job = job_of(run)
    if job is not None:
        return job.role in (
            naming.Role.SUPERCELL_STATIC,
            naming.Role.SUPERCELL_RELAX,
            naming.Role.UNIT_RELAX,
        )
    return opts.host_element in run.species and set(run.species) <= opts.hosts


def _pristine_rank(run: RunData) -> int:
    job = job_of(run)
    order = {
        naming.Role.SUPERCELL_STATIC: 0,
        naming.Role.SUPERCELL_RELAX: 1,
        naming.Role.UNIT_RELAX: 2,
    }
    return order.get(job.role, 3) if job is not None else 3


def _comparison_rank(rep: RunReport) -> tuple[int, int, int]:
    role_rank = 0 if rep.role == str(naming.Role.RAMP_STATIC) else 1
    return (role_rank, 0 if rep.kind == "static" else 1, 0 if rep.converged else 1)


def read_runs(
    paths: Sequence[str | Path],
    *,
    partial: bool = False,
    pdos: bool = False,
    reader: Callable[..., RunData] | None = None,
) -> tuple[list[RunData], list[str]]:
    """Read run folders; with ``partial`` unreadable ones are listed instead of raising.

    Raises
    ------
    RunReadError
        A folder that is missing or cannot be read (unless ``partial``).
    """
    from polaronflow.analysis.readers import read_run
    from polaronflow.errors import RunReadError

    read = reader or read_run
    runs, errors = [], []
    for p in paths:
        path = Path(p)
        if not path.exists():
            exc: PolaronflowError = RunReadError(f"{path}: no such file or directory")
            if not partial:
                raise exc
            errors.append(str(exc))
            continue
        try:
            runs.append(read(path, pdos=pdos, strict=not partial))
        except PolaronflowError as exc:
            if not partial:
                # Name the option that helps: the other folders can still be analysed.
                raise type(exc)(f"{exc} (--partial analyses the rest and marks this)") from None
            errors.append(str(exc))
    return runs, errors


def summary_rows(report: AnalysisReport) -> list[dict[str, Any]]:
    """One flat dict per run for tables (strings and numbers only).

    Sites are shown with their 1-based VASP ion numbers (as in the OUTCAR and VESTA);
    quantities a run cannot give read "n/a" and the reason is listed under the table.
    """
    rows = []
    for rep in report.runs:
        pol, el = rep.polarons, rep.electronic
        row: dict[str, Any] = {
            "run": Path(rep.path).name or rep.path,
            "formula": rep.formula,
            "kind": rep.role or rep.kind,
            "xc": rep.functional or "unknown",
            "U": ", ".join(f"{k} {v:g}" for k, v in rep.u_values.items() if v) or "-",
            "E (eV)": f"{rep.energy:.4f}" if rep.energy is not None else "n/a",
        }
        if pol is not None:
            exp = "?" if pol.electrons_donated is None else f"{pol.electrons_donated:g}"
            row["polarons"] = f"{pol.polaron_count}/{exp}"
            row["ion: m (μB)"] = (
                " ".join(f"{p.element}{p.ion}: {p.moment:+.2f}" for p in pol.polarons) or "none"
            )
            row["max below thr."] = (
                f"{pol.largest_below_moment:+.2f} (ion {pol.largest_below_ion})"
                if pol.largest_below_moment is not None
                else "-"
            )
            if pol.dopant_indices:
                row["shell"] = " ".join(str(p.shell) if p.shell else "-" for p in pol.polarons)
                row["d (Å)"] = " ".join(
                    f"{p.distance_to_dopant:.2f}" if p.distance_to_dopant is not None else "-"
                    for p in pol.polarons
                )
            row["plane"] = " ".join(p.plane or "-" for p in pol.polarons) or "-"
        elif "polarons" in rep.unavailable:
            row["polarons"] = "n/a"
        if el is not None:
            if el.metal:
                row["gap (eV)"] = "metal"
            else:
                row["gap (eV)"] = f"{el.host_gap:.3f}" if el.host_gap is not None else "-"
            if el.in_gap_states or el.level_occupations or el.level_dos:
                row["level↓CBM occ"] = (
                    f"{el.level_occupations.depth:.3f}" if el.level_occupations else "-"
                )
                row["level↓CBM DOS"] = f"{el.level_dos.depth:.3f}" if el.level_dos else "-"
        elif "electronic" in rep.unavailable:
            row["gap (eV)"] = "n/a"
        flags = []
        if not rep.converged:
            flags.append("UNCONVERGED")
        if pol is not None:
            flags.extend(pol.flags)
        if rep.unavailable:
            flags.append("not available: " + ", ".join(sorted(rep.unavailable)))
        if rep.partial:
            flags.append("partial")
        row["flags"] = ", ".join(flags) or "ok"
        rows.append(row)
    return rows


def lattice_from_mapping(values: Mapping[str, float]) -> LatticeParameters:
    """Lattice parameters from a mapping such as the host provenance's experimental lattice."""
    from polaronflow.analysis.structure import as_lattice_parameters

    return as_lattice_parameters(values)
