"""``polaronflow launch``: run the embedded LaunchPad's jobs here, in N worker processes."""

from __future__ import annotations

from pathlib import Path

import typer

from polaronflow.cli import app


@app.command()
def launch(
    workers: int = typer.Option(
        1, "--workers", "-n", help="Worker processes; each runs one job at a time."
    ),
    launch_dir: Path = typer.Option(
        None,
        "--launch-dir",
        help="Folder for the launcher_* run folders (default PROJECT/launches).",
    ),
    config: Path = typer.Option(None, "--config", help="polaronflow settings YAML."),
    project_dir: Path = typer.Option(None, "--project-dir", help="Embedded store folder."),
    sleep: float = typer.Option(
        0.5, "--sleep", help="Seconds between looks for new work while other jobs run."
    ),
    rerun_running: bool = typer.Option(
        False,
        "--rerun-running",
        help="Run again the jobs an earlier, unfinished launch left RUNNING (lost launches).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run every job that can run on the embedded LaunchPad (FireWorks rockets, N workers).

    For a MongoDB LaunchPad use FireWorks' own rlaunch/qlaunch.
    """
    from polaronflow.errors import ConfigError
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.launch import launch_embedded

    settings = load_settings(config, project_dir=project_dir)
    if settings.launchpad_file is not None:
        raise ConfigError(
            f"launch runs the embedded LaunchPad; the settings name a MongoDB LaunchPad "
            f"({settings.launchpad_file}): use FireWorks' rlaunch/qlaunch with it"
        )

    def progress(done: int, total: int, name: str) -> None:
        if not as_json:
            typer.echo(f"[{done}/{total}] {name}", err=True)

    result = launch_embedded(
        settings.project_dir,
        workers=workers,
        launch_dir=launch_dir,
        sleep=sleep,
        progress=progress,
        lock_timeout=settings.lock_timeout,
        rerun_running=rerun_running,
    )
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
    else:
        counts = ", ".join(f"{n} {state}" for state, n in result.counts().items())
        typer.echo(
            f"{len(result.records)} jobs ({counts}) with {result.workers} worker(s) in "
            f"{result.seconds:.0f} s; run folders in {result.launch_dir}"
        )
        for r in result.records:
            if r.fw_id in result.fizzled:
                typer.echo(f"FIZZLED: {r.name} (fw_id {r.fw_id}) in {r.launch_dir}")
        if result.rerun:
            typer.echo(f"ran again the lost launches of fw_ids {result.rerun}")
        if result.left_running:
            typer.echo(
                f"fw_ids {result.left_running} are RUNNING in a launch this host cannot check "
                "(another host, or a live process); --rerun-running runs them again"
            )
    if result.fizzled:
        raise typer.Exit(1)
