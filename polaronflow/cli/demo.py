"""``polaronflow demo``: the campaign end to end on the embedded LaunchPad with a mock VASP."""

from __future__ import annotations

from pathlib import Path

import typer

from polaronflow.cli import app


@app.command()
def demo(
    out: Path = typer.Option(Path("polaronflow-demo"), "--out", help="Report folder to create."),
    scenario: str = typer.Option(
        "paper_like", "--scenario", help="Emulator scenario name or YAML file."
    ),
    ion: list[str] | None = typer.Option(
        None, "--ion", help="Dopant, repeatable (default: Mg and 2H, as the paper)."
    ),
    supercell: tuple[int, int, int] = typer.Option(
        (2, 2, 2), "--supercell", help="Supercell multiples (the paper's 2 2 2 by default)."
    ),
    schedule: str = typer.Option(
        "9,7,5", "--schedule", help="U schedule on W d in eV (the campaign default is 9,8,7,6,5)."
    ),
    paper_settings: bool = typer.Option(
        False, "--paper-settings", help="Use the paper's k-mesh and NEDOS (slow, large files)."
    ),
    force: bool = typer.Option(False, "--force", help="Replace a previous demo in --out."),
    workers: int = typer.Option(
        2, "--workers", "-n", help="Worker processes running the jobs (as polaronflow launch)."
    ),
    fault: list[str] | None = typer.Option(
        None,
        "--fault",
        help="Inject a VASP failure, repeatable: JOB_NAME_PART:FAULT "
        "(e.g. mg-ramp-u9:zbrent) to watch custodian correct it.",
    ),
) -> None:
    """Run the whole campaign with FireWorks, custodian and the mock-VASP emulator (synthetic)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from polaronflow.analysis.rundata import SYNTHETIC_MARKER
    from polaronflow.demo import run_demo
    from polaronflow.emulator.scenario import load_scenario

    load_scenario(scenario)  # a bad name fails here, before anything is printed or created
    u_schedule = _validate(ion, supercell, schedule, fault, workers)
    console = Console(stderr=True)
    console.print(
        f"[bold red]{SYNTHETIC_MARKER}[/]: the VASP outputs of this demo are synthetic "
        f"(mock-VASP emulator, scenario '{scenario}'), not VASP results."
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("campaign", total=None)

        def progress(done: int, total: int, name: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{name:<28s}")

        result = run_demo(
            out=out,
            scenario=scenario,
            ions=ion,
            supercell=supercell,
            schedule=u_schedule,
            paper_settings=paper_settings,
            faults=fault,
            progress=progress,
            force=force,
            workers=workers,
        )
    states: dict[str, int] = {}
    for job in result.jobs:
        states[job.state] = states.get(job.state, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    typer.echo(f"{SYNTHETIC_MARKER}: synthetic VASP outputs (scenario {scenario})")
    typer.echo(f"demo: {len(result.jobs)} jobs ({summary}) in {result.seconds:.0f} s")
    typer.echo(f"report: {Path(result.report_dir) / 'REPORT.md'}")
    if not result.ok:
        raise typer.Exit(1)


def _validate(ions, supercell, schedule: str, faults, workers: int) -> tuple[float, ...]:
    """Reject bad options before anything is printed or created; returns the U schedule."""
    from polaronflow.errors import InputError
    from polaronflow.workflows.campaign.options import make_options, parse_ion

    options = make_options(
        ions=list(ions or ["Mg", "2H"]), supercell=tuple(supercell), schedule=schedule
    )
    for text in options.ions:
        parse_ion(text)
    for entry in faults or []:
        if ":" not in entry:
            raise InputError(f"--fault {entry!r}: use JOB_NAME_PART:FAULT, e.g. mg-ramp-u9:zbrent")
    if workers < 1:
        raise InputError(f"--workers must be a whole number >= 1, got {workers}")
    return tuple(options.schedule)
