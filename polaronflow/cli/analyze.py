"""``polaronflow analyze RUN_DIR…``: polarons, in-gap levels, lattice and reaction energies.

Kept light on purpose: without ``--plots`` neither pymatgen nor matplotlib is imported, so the
command starts fast (see benchmarks/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from polaronflow.cli import app, skip_teardown


@app.command()
def analyze(
    run_dirs: list[Path] = typer.Argument(..., help="VASP run folders (or single output files)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the full report as JSON on stdout (nothing else there)."
    ),
    json_out: Path | None = typer.Option(
        None, "--json-out", help="Also write the full report as JSON to this file (atomically)."
    ),
    plots: Path | None = typer.Option(
        None, "--plots", help="Write PNG figures (DOS, polaron maps, U ramps) into this folder."
    ),
    partial: bool = typer.Option(
        False, "--partial", help="Skip unusable runs/analyses instead of failing; mark partial."
    ),
    dopant: str | None = typer.Option(
        None, "--dopant", help="Dopant element (default: every element outside the host)."
    ),
    cation: str = typer.Option("W", "--cation", help="Host cation that carries polarons."),
    host: str | None = typer.Option(
        None,
        "--host",
        help="Elements of the host, comma-separated (default: the --cation and O), e.g. "
        "'Sr,Ti,O' for a perovskite: every other element is a dopant.",
    ),
    electrons: float | None = typer.Option(
        None,
        "--electrons",
        help="Electrons expected to localise in each doped run (default: the dopants' nominal "
        "donation plus electrons added through NELECT); with no doped run, in every run.",
    ),
    threshold: float = typer.Option(
        0.3, "--threshold", help="|m| (μB) at or above which a cation site is a polaron."
    ),
    temperature: float = typer.Option(
        298.15, "--temperature", help="T (K) of the O2 pressure term of reaction energies."
    ),
    p_o2: float = typer.Option(0.21, "--po2", help="O2 partial pressure (atm)."),
    temperature_term: bool = typer.Option(
        False,
        "--o2-temperature-term",
        help="Add the tabulated O2 temperature term (Reuter & Scheffler 2002) to μ_O2.",
    ),
    allow_unconverged: bool = typer.Option(
        False,
        "--allow-unconverged",
        help="Combine mismatched or unconverged runs in reactions anyway (marked FORCED).",
    ),
    reaction: list[str] = typer.Option(
        [],
        "--reaction",
        help="Also compute this reaction, e.g. 'Li2O + 1/2 O2 -> Li2O2' (repeatable); the "
        "paper's two are computed whenever their runs are present.",
    ),
    vs_experiment: bool = typer.Option(
        False, "--vs-experiment", help="Compare pristine cells with the experimental γ-WO3 cell."
    ),
) -> None:
    """Analyse finished VASP runs: polarons, in-gap level, lattice, reaction energies."""
    from polaronflow.analysis.report import AnalysisOptions, analyze_runs, read_runs

    experiment = None
    if vs_experiment:
        from polaronflow.structures.host import EXPERIMENTAL_LATTICE

        experiment = dict(EXPERIMENTAL_LATTICE)
    import math

    from polaronflow.errors import InputError

    _refuse_report_as_run(run_dirs)
    # Checked here, before any run is read: they matter only once reactions are computed.
    if not (math.isfinite(p_o2) and p_o2 > 0):
        raise InputError(f"--po2 {p_o2}: the O2 partial pressure must be a number > 0 (atm)")
    if not (math.isfinite(temperature) and temperature > 0):
        raise InputError(f"--temperature {temperature}: must be a number > 0 (K)")
    if electrons is not None and not (math.isfinite(electrons) and electrons >= 0):
        raise InputError(f"--electrons {electrons}: must be a number of electrons >= 0")
    host_elements = None
    if host is not None:
        host_elements = tuple(dict.fromkeys(x.strip() for x in host.split(",") if x.strip()))
        if not host_elements:
            raise InputError("--host: give the host elements, comma-separated, e.g. 'W,O'")
        if cation not in host_elements:
            raise InputError(
                f"--host {host!r} does not contain the --cation {cation!r}: the cation that "
                "carries the polarons is part of the host"
            )
    opts = AnalysisOptions(
        host_element=cation,
        host_elements=host_elements,
        electrons=electrons,
        dopant=dopant,
        threshold=threshold,
        partial=partial,
        allow_mismatch=allow_unconverged,
        temperature=temperature,
        p_o2=p_o2,
        temperature_term="reuter-scheffler" if temperature_term else None,
        experiment=experiment,
        extra_reactions=tuple(reaction),
    )
    # Large vasprun.xml files take a moment: say what is happening, on a terminal only (the
    # line is erased once the runs are read, whatever happens).
    waiting = sys.stderr.isatty()
    if waiting:
        sys.stderr.write(f"reading {len(run_dirs)} run folder(s)…")
        sys.stderr.flush()
    try:
        runs, read_errors = read_runs(run_dirs, partial=partial, pdos=plots is not None)
        _check_elements(opts, runs, read_errors)
        report = analyze_runs(runs, opts, read_errors=read_errors)
    finally:
        if waiting:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_report(report)
    if json_out is not None:
        from polaronflow.fileio import write_text_atomic

        # Atomic: a full disk or a kill leaves the previous report intact, never half of one.
        write_text_atomic(json_out, report.model_dump_json(indent=2) + "\n")
    if plots is not None:
        from polaronflow.analysis.plots import write_report_plots

        written = write_report_plots(report, runs, plots, cation=cation)
        for path in written:
            typer.echo(f"wrote {path}", err=True)
    # Everything is printed and written: the console script may skip the interpreter's
    # teardown (freeing numpy and pydantic state), as after `inputs`.
    skip_teardown()


def _refuse_report_as_run(run_dirs: list[Path]) -> None:
    """A missing ``*.json`` among the run folders is the old ``--json FILE`` spelling."""
    from polaronflow.errors import InputError

    for path in run_dirs:
        if path.suffix.lower() == ".json" and not path.exists():
            raise InputError(
                f"{path}: no such run folder or file; --json is a flag (the report as JSON on "
                f"stdout): to write the report to a file use --json-out {path}"
            )


def _check_elements(opts, runs, read_errors) -> None:
    """Refuse an empty analysis and element options that no run contains (typos).

    ``--partial`` skips unreadable folders; when that leaves nothing, there is nothing to
    report and the exit status must say so (2), with the reasons.
    """
    from polaronflow.errors import InputError, RunReadError

    if not runs:
        reasons = "; ".join(read_errors) or "no run folder given"
        raise RunReadError(f"no run could be analysed: {reasons}")
    present = {el for run in runs for el in run.species}
    elements = ", ".join(sorted(present))
    # The default cation (W) may legitimately be absent: a reference analysed on its own.
    if opts.host_element != "W" and opts.host_element not in present:
        raise InputError(
            f"--cation {opts.host_element!r} is in none of the runs (elements: {elements})"
        )
    if opts.dopant is not None and opts.dopant not in present:
        raise InputError(f"--dopant {opts.dopant!r} is in none of the runs (elements: {elements})")
    for el in opts.host_elements or ():
        if el not in present:
            raise InputError(f"--host element {el!r} is in none of the runs (elements: {elements})")


def _print_report(report) -> None:
    from polaronflow.analysis.report import summary_rows
    from polaronflow.cli._table import BOLD, BOLD_RED, DIM, RED, Output

    out = Output()
    title = "polaronflow analyze"
    if report.synthetic:
        title = "SYNTHETIC (emulator) data, not VASP results: " + title
    if report.partial:
        title += " [PARTIAL]"
    rows = summary_rows(report)
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    out.table(
        title,
        columns,
        [[str(row.get(c, "")) for c in columns] for row in rows],
        title_style=BOLD_RED if report.synthetic else BOLD,
    )

    for rep in report.runs:
        notes = []
        if rep.polarons:
            notes += rep.polarons.notes
        if rep.electronic:
            notes += rep.electronic.warnings
        notes += rep.problems
        notes += [f"{k}: {v}" for k, v in rep.unavailable.items()]
        for note in dict.fromkeys(notes):
            out.labelled(Path(rep.path).name + ":", note, DIM)

    if report.lattice_changes:
        out.table(
            "Lattice changes (%)",
            ("cells", "multiple", "Δa", "Δb", "Δc", "Δβ", "ΔV"),
            [
                [
                    lc.label,
                    "×".join(map(str, lc.multiple)),
                    *(f"{lc.percent[k]:+.2f}" for k in ("a", "b", "c", "beta", "volume")),
                ]
                for lc in report.lattice_changes
            ],
        )
    if report.reactions:
        rows_r = []
        for r in report.reactions:
            terms = []
            if r.o2_pressure_term is not None:
                terms.append(f"kT ln(pO2) {r.o2_pressure_term:+.4f} eV at {r.temperature:g} K")
            if r.o2_temperature_term is not None:
                terms.append(f"tabulated {r.o2_temperature_term:+.3f} eV")
            rows_r.append(
                [
                    r.reaction,
                    f"{r.delta_e_dft:.4f}",
                    f"{r.delta_e:.4f}",
                    f"{r.delta_e_kj_mol:.1f}",
                    "; ".join(terms) or "-",
                    "FORCED: " + "; ".join(r.overridden) if r.overridden else "",
                ]
            )
        out.table(
            "Reaction energies",
            ("reaction", "ΔE DFT (eV)", "ΔE (eV)", "ΔE (kJ/mol)", "μ_O2 terms", "note"),
            rows_r,
        )
    for ramp in report.ramps:
        out.table(
            f"U ramp of {ramp.system} (U on {ramp.element})",
            ("U (eV)", "level↓CBM occ (eV)", "polarons ion: m (μB)", "run"),
            [
                [
                    f"{s.u:g}",
                    f"{s.level_depth:.3f}" if s.level_depth is not None else "-",
                    " ".join(
                        f"{i}: {m:+.2f}" for i, m in zip(s.polaron_ions, s.moments, strict=True)
                    )
                    or "none",
                    Path(s.path).name + ("" if s.converged else " (unconverged)"),
                ]
                for s in ramp.steps
            ],
        )
    for ranking in report.configurations:
        out.table(
            f"{ranking.label}: final statics ranked by energy",
            ("ΔE (eV)", "NUPDOWN", "polarons ion (shell): m (μB)", "run"),
            [
                [
                    f"{row.delta_e:.3f}" + (" (lowest)" if row.ground_state else ""),
                    "free" if row.nupdown is None else str(row.nupdown),
                    " ".join(
                        f"{i} ({'-' if sh is None else sh}): {m:+.2f}"
                        for i, sh, m in zip(row.polaron_ions, row.shells, row.moments, strict=True)
                    )
                    or "none",
                    Path(row.run).name,
                ]
                for row in ranking.runs
            ],
        )
    for c in report.comparisons:
        rows_c = []
        for method in sorted(set(c.depth_a) | set(c.depth_b)):
            a, b = c.depth_a.get(method), c.depth_b.get(method)
            rows_c.append(
                [
                    f"level below CBM, {method} (eV)",
                    "-" if a is None else f"{a:.3f}",
                    "-" if b is None else f"{b:.3f}",
                    f"{b - a:+.3f} eV" if a is not None and b is not None else "-",
                ]
            )
        ratio = c.central_moment_ratio_percent
        rows_c.append(
            [
                "central moment (μB)",
                "-" if c.central_moment_a is None else f"{c.central_moment_a:.3f}",
                "-" if c.central_moment_b is None else f"{c.central_moment_b:.3f}",
                "-" if ratio is None else f"{ratio:+.1f} % ({c.label_b} vs {c.label_a})",
            ]
        )
        out.table(
            f"{c.label_a} vs {c.label_b}  ({Path(str(c.run_a)).name} vs {Path(str(c.run_b)).name})",
            ("quantity", c.label_a, c.label_b, "difference"),
            rows_c,
        )
    for err in report.errors:
        out.labelled("skipped:", err, RED, indent=0)
