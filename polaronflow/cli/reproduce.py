"""``polaronflow reproduce``: the paper's numbers beside the values from a finished campaign."""

from __future__ import annotations

from pathlib import Path

import typer

from polaronflow.cli import app


@app.command()
def reproduce(
    runs: Path = typer.Argument(
        ...,
        help="Campaign folder: one run folder per job name "
        "(wo3-unit-relax, mg-static, ref-MgO-…); see the README.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report as JSON on stdout instead of the table."
    ),
    json_out: Path = typer.Option(
        None, "--json-out", help="Also write the report as JSON to this file (atomically)."
    ),
    markdown_out: Path = typer.Option(None, "--markdown", help="Also write it as Markdown."),
    allow_unconverged: bool = typer.Option(
        False,
        "--allow-unconverged",
        help="Use unconverged or inconsistent runs anyway (rows say so).",
    ),
) -> int:
    """Print paper | this work | Δ | verdict for every number of the paper, then the arithmetic.

    Exit status 0 when every quantity is reproduced within its tolerance, 1 when some are not
    (or are missing, or the runs are synthetic: a synthetic run reproduces nothing), 2 on bad
    input (including run folders that were found but not one of which could be used).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from polaronflow.analysis.paper import SYNTHETIC_VERDICT
    from polaronflow.analysis.reproduce import fmt_value
    from polaronflow.analysis.reproduce import reproduce as run_reproduce
    from polaronflow.fileio import write_json_atomic, write_text_atomic

    report = run_reproduce(runs, allow_unconverged=allow_unconverged)
    if report.runs and all(r.verdict == "missing" for r in report.rows):
        from polaronflow.errors import RunReadError

        # Run folders were found but not one could be used: bad input, not a missing result.
        # Say why, per folder found (roles without any folder are not the reason).
        reasons = [p for p in report.problems if not p.endswith("no run folder found")]
        reasons += sorted({r.note for r in report.rows if r.note.startswith("could not")})
        hint = "" if allow_unconverged else " (--allow-unconverged uses them anyway, marked)"
        raise RunReadError(
            f"{runs}: none of the {len(report.runs)} run folder(s) found could be used: "
            + ("; ".join(reasons) or "they give none of the paper's quantities")
            + hint
        )
    if json_out:
        write_json_atomic(json_out, report.model_dump(mode="json"))
    if markdown_out:
        write_text_atomic(markdown_out, report.to_markdown())
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return 0 if report.all_reproduced else 1
    # emoji off: role names such as 'ref:O2' must print as written
    console = Console(emoji=False)
    if not console.is_terminal:
        console = Console(emoji=False, width=150)
    if report.synthetic:
        console.print(
            "[bold red]SYNTHETIC DATA: these runs were written by the mock-VASP "
            "emulator, not by VASP — the table proves the pipeline, not the physics; "
            "nothing is reproduced.[/]"
        )
    for note in report.method_notes:
        console.print(f"[yellow]not the paper's method:[/] {escape(note)}")
    table = Table(title=report.title, show_lines=False)
    for col in ("quantity", "paper", "this work", "Δ", "±tol", "verdict", "where"):
        table.add_column(col, justify="left" if col in ("quantity", "where") else "right")
    colours = {
        "reproduced": "green",
        "differs": "red",
        "missing": "yellow",
        SYNTHETIC_VERDICT: "magenta",
    }
    for row in report.rows:
        table.add_row(
            row.quantity,
            f"{fmt_value(row.paper)} {row.unit}",
            fmt_value(row.this_work),
            fmt_value(row.delta, signed=True),
            fmt_value(row.tolerance),
            f"[{colours.get(row.verdict, 'white')}]{row.verdict}[/]",
            row.where,
        )
    console.print(table)
    for row in report.rows:
        if row.note and row.key.startswith("dE_"):
            console.print(f"  [dim]{escape(row.quantity)}:[/dim] {escape(row.note)}")
    console.print("[bold]Arithmetic that needs no DFT[/]")
    for line in report.arithmetic:
        printed = "" if line.printed is None else f" (paper prints {fmt_value(line.printed)})"
        verdict = ""
        if line.verdict:
            colour = "green" if line.verdict == "consistent" else "red"
            verdict = f" [{colour}]{line.verdict}[/]"
        console.print(
            f"  {line.label}: {line.expression} = {line.value:.4f} {line.unit}{printed}{verdict}"
        )
        if line.note and line.verdict == "inconsistent":
            console.print(f"    {line.note}")
    for problem in report.problems:
        console.print(f"[yellow]not used:[/] {escape(problem)}")
    counts = {
        v: sum(r.verdict == v for r in report.rows)
        for v in ("reproduced", SYNTHETIC_VERDICT, "differs", "missing")
    }
    if report.synthetic:
        console.print(
            f"SYNTHETIC: nothing reproduced ({counts[SYNTHETIC_VERDICT]} within tolerance by "
            f"construction), {counts['differs']} differ, {counts['missing']} missing"
        )
    else:
        console.print(
            f"{counts['reproduced']} reproduced, {counts['differs']} differ, "
            f"{counts['missing']} missing"
        )
    return 0 if report.all_reproduced else 1
