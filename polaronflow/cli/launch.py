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
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Run every job that can run on the embedded LaunchPad (FireWorks rockets, N workers).

    For a MongoDB LaunchPad use FireWorks' own rlaunch/qlaunch.
    """
    from polaronflow.errors import ConfigError, InputError
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.launch import launch_embedded

    if workers < 1:  # before the project check: the one error that is about this line
        raise InputError(f"workers must be a whole number >= 1, got {workers!r}")
    settings = load_settings(config, project_dir=project_dir)
    runs = "its runner, `jf runner start`"
    _fireworks_runner(settings, "launch", project_dir is None, runs, "--project-dir")
    if settings.launchpad_file is None:
        _require_project(settings)
    if settings.launchpad_file is not None:
        raise ConfigError(
            f"launch runs the embedded LaunchPad; the settings name a MongoDB LaunchPad "
            f"({settings.launchpad_file}): use FireWorks' rlaunch/qlaunch with it"
        )

    import contextlib
    import sys

    bar = None
    if sys.stderr.isatty() and not as_json:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(
            TextColumn("launch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
        )
        task = bar.add_task("starting", total=None)

    def progress(done: int, total: int, name: str) -> None:
        # stderr only: stdout is for the result
        if bar is not None:
            bar.update(task, completed=done, total=total, description=name)
        else:
            typer.echo(f"[{done}/{total}] {name}", err=True)

    with bar if bar is not None else contextlib.nullcontext():
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
        from collections import Counter

        ran = [r for r in result.records if r.fw_id in set(result.ran)]
        counts = ", ".join(f"{n} {st}" for st, n in sorted(Counter(r.state for r in ran).items()))
        typer.echo(
            f"ran {len(ran)} jobs ({counts or 'none'}) with {result.workers} worker(s) in "
            f"{result.seconds:.0f} s; run folders in {result.launch_dir}"
        )
        rest = Counter(r.state for r in result.records if r.fw_id not in set(result.ran))
        if rest:
            typer.echo(
                "not run by this launch: "
                + ", ".join(f"{n} {st}" for st, n in sorted(rest.items()))
                + " (see `polaronflow status`)"
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


@app.command()
def rerun(
    fizzled: bool = typer.Option(False, "--fizzled", help="Rerun every FIZZLED job."),
    lost: bool = typer.Option(
        False,
        "--lost",
        help="Rerun jobs whose launch is lost (embedded: launcher and worker gone from this "
        "host, their VASP killed first; MongoDB: no ping for --lost-after seconds and no sign "
        "of life in the launch folder).",
    ),
    lost_after: float = typer.Option(
        None,
        "--lost-after",
        help="MongoDB: seconds without a ping before a launch counts as lost (default "
        "FireWorks' RUN_EXPIRATION_SECS, 4 h; at least two PING_TIME_SECS).",
    ),
    job: list[str] = typer.Option(None, "--job", help="Rerun this job (by name), repeatable."),
    campaign: str = typer.Option(
        None, "--campaign", help="Campaign-id prefix or a FireWorks id (default: the only one)."
    ),
    config: Path = typer.Option(None, "--config", help="polaronflow settings YAML."),
    project_dir: Path = typer.Option(None, "--project-dir", help="Embedded store folder."),
    launchpad_file: Path = typer.Option(
        None, "--launchpad", help="my_launchpad.yaml of a MongoDB LaunchPad."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Put failed, lost or named jobs of a campaign back to READY (then `launch` runs them)."""
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.recovery import rerun_jobs

    settings = load_settings(config, project_dir=project_dir, launchpad_file=launchpad_file)
    implicit = project_dir is None and launchpad_file is None
    named = "--project-dir or --launchpad"
    _fireworks_runner(settings, "rerun", implicit, "`jf job rerun` (see `jf job list`)", named)
    _require_project(settings)
    result = rerun_jobs(
        settings, campaign, fizzled=fizzled, lost=lost, names=job, lost_after=lost_after
    )
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    if result.repaired:
        names = ", ".join(f"{n} ({i})" for i, n in result.repaired.items())
        typer.echo(f"finished, state brought up to date: {names}")
    if result.alive:
        names = ", ".join(f"{n} ({i})" for i, n in result.alive.items())
        typer.echo(
            f"not pinging but alive (a process or a recent file in the launch folder), left "
            f"alone: {names}"
        )
    if not result.rerun:
        typer.echo(f"nothing to rerun in campaign '{result.campaign.name}' on {result.launchpad}")
        return
    names = ", ".join(f"{n} ({i})" for i, n in result.rerun.items())
    typer.echo(f"READY again on {result.launchpad}: {names}")


@app.command()
def delete(
    campaign: str = typer.Option(
        None, "--campaign", help="Campaign-id prefix or a FireWorks id (default: the only one)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask (for scripts)."),
    config: Path = typer.Option(None, "--config", help="polaronflow settings YAML."),
    project_dir: Path = typer.Option(None, "--project-dir", help="Embedded store folder."),
    launchpad_file: Path = typer.Option(
        None, "--launchpad", help="my_launchpad.yaml of a MongoDB LaunchPad."
    ),
    jobstore_file: Path = typer.Option(None, "--jobstore", help="jobflow.yaml with JOB_STORE."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON on stdout."),
) -> None:
    """Remove a campaign from the LaunchPad and its outputs from the JobStore (asks first).

    Run folders stay on disk.
    """
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.recovery import delete_campaign

    settings = load_settings(
        config, project_dir=project_dir, launchpad_file=launchpad_file, jobstore_file=jobstore_file
    )
    implicit = project_dir is None and launchpad_file is None
    named = "--project-dir or --launchpad"
    _fireworks_runner(settings, "delete", implicit, "`jf flow delete` (see `jf flow list`)", named)
    _require_project(settings)

    def confirm(description: str) -> bool:
        if yes:
            return True
        import sys

        if not sys.stdin.isatty():
            from polaronflow.errors import InputError

            raise InputError(f"delete campaign {description}? not a terminal: add --yes")
        return typer.confirm(f"delete campaign {description}?", default=False, err=True)

    result = delete_campaign(settings, campaign, confirm=confirm)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    typer.echo(
        f"deleted campaign '{result.campaign.name}' ({len(result.campaign.fw_ids)} jobs, "
        f"{result.outputs_removed} outputs) from {result.launchpad}; run folders kept"
    )


def _fireworks_runner(settings, command: str, implicit: bool, instead: str, named: str) -> None:
    """Refuse a FireWorks command when the settings send the campaign to jobflow-remote.

    Only when no store was named on the command line (``implicit``): the default embedded
    store is then not where the campaign is, and acting on it would act on the wrong jobs.
    """
    from polaronflow.errors import ConfigError

    if implicit and settings.runner == "jobflow-remote":
        name = settings.jfremote_project
        project = f"project {name}" if name else "its current project"
        raise ConfigError(
            f"`polaronflow {command}` works on a FireWorks LaunchPad, but the settings' runner "
            f"is jobflow-remote ({project}): for "
            f"its queue use {instead}; `polaronflow status` shows the jobs. Give {named} to act "
            "on a FireWorks LaunchPad anyway"
        )


def _require_project(settings) -> None:
    """A missing embedded project is refused, never created (only submit/init create one)."""
    from polaronflow.errors import ConfigError
    from polaronflow.workflows.runtime.submit import LAUNCHPAD_FILE

    if settings.launchpad_file is None and not (settings.project_dir / LAUNCHPAD_FILE).is_file():
        raise ConfigError(
            f"no polaronflow project in {settings.project_dir} (no {LAUNCHPAD_FILE}): check "
            "--project-dir, or create one with `polaronflow submit` or `polaronflow init`"
        )
