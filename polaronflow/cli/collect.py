"""``polaronflow collect``: a finished campaign's runs from its JobStore as RUNS/<job name>."""

from __future__ import annotations

from pathlib import Path

import typer

from polaronflow.cli import app


@app.command()
def collect(
    runs: Path = typer.Argument(..., help="Folder to create with one link per finished job."),
    config: Path = typer.Option(None, "--config", help="polaronflow settings YAML."),
    project_dir: Path = typer.Option(None, "--project-dir", help="Embedded store folder."),
    jobstore_file: Path = typer.Option(None, "--jobstore", help="jobflow.yaml with JOB_STORE."),
    launchpad_file: Path = typer.Option(
        None, "--launchpad", help="my_launchpad.yaml of a MongoDB LaunchPad."
    ),
    campaign: str = typer.Option(
        None,
        "--campaign",
        help="Campaign-id prefix, or a FireWorks (jobflow-remote DB) id of one of its jobs "
        "(default: the latest).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty RUNS folder."),
) -> None:
    """Link every finished job's run folder as RUNS/<job name> (for reproduce and analyze)."""
    from polaronflow.errors import ConfigError, InputError
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.collect import campaign_uuids, collect_runs
    from polaronflow.workflows.runtime.submit import JOBSTORE_DIR, _jobstore

    if runs.exists() and not runs.is_dir():
        raise InputError(f"RUNS {runs} exists and is not a folder")
    settings = load_settings(
        config, project_dir=project_dir, jobstore_file=jobstore_file, launchpad_file=launchpad_file
    )
    jfremote = settings.runner == "jobflow-remote"
    if settings.jobstore_file is None and settings.launchpad_file is None and not jfremote:
        embedded = settings.project_dir.expanduser() / JOBSTORE_DIR
        if not embedded.is_dir():
            raise InputError(
                f"no embedded JobStore in {settings.project_dir} (nothing was submitted there); "
                "give --project-dir of a submitted campaign or --jobstore jobflow.yaml"
            )
    if jfremote and settings.jobstore_file is None:
        from polaronflow.workflows.runtime.jfremote import project_jobstore

        store = project_jobstore(settings)
    else:
        store = _jobstore(settings)
    if store is None:
        raise ConfigError(
            "no JobStore configured for this MongoDB LaunchPad: give --jobstore jobflow.yaml"
        )
    uuids, chosen = None, None
    from polaronflow.workflows.runtime.submit import LAUNCHPAD_FILE

    if jfremote:
        from polaronflow.workflows.runtime.jfremote import campaign_jobs

        uuids, said = campaign_jobs(settings, campaign)
        if said:
            typer.echo(said, err=True)
    elif settings.launchpad_file is not None or (settings.project_dir / LAUNCHPAD_FILE).is_file():
        from polaronflow.workflows.runtime.recovery import describe_campaign, list_campaigns
        from polaronflow.workflows.runtime.status import pick_or_latest
        from polaronflow.workflows.runtime.submit import open_launchpad

        with open_launchpad(settings, read_only=True) as lp:
            refs = list_campaigns(lp)
            if refs:
                chosen, said = pick_or_latest(refs, campaign)
                uuids = campaign_uuids(lp, chosen.fw_ids)
                typer.echo(f"{said} campaign {describe_campaign(chosen)}", err=True)
    linked = collect_runs(store, runs, force=force, uuids=uuids)
    typer.echo(f"collected {len(linked)} runs into {runs}")
