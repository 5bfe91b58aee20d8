"""``polaronflow status``: the jobs on the LaunchPad, why they failed, what custodian fixed."""

from __future__ import annotations

from pathlib import Path

import typer

from polaronflow.cli import app


@app.command()
def status(
    as_json: bool = typer.Option(False, "--json", help="Print the status as JSON on stdout."),
    campaign: str = typer.Option(
        None, "--campaign", help="Campaign-id prefix or a FireWorks id (default: the latest)."
    ),
    config: Path = typer.Option(None, "--config", help="polaronflow settings YAML."),
    project_dir: Path = typer.Option(None, "--project-dir", help="Embedded store folder."),
    launchpad_file: Path = typer.Option(
        None, "--launchpad", help="my_launchpad.yaml of a MongoDB LaunchPad."
    ),
) -> None:
    """Show every workflow's jobs: state, FireWorks id, launch folder, failure, corrections."""
    from polaronflow.settings import load_settings
    from polaronflow.workflows.runtime.status import campaign_status, select_campaign

    settings = load_settings(config, project_dir=project_dir, launchpad_file=launchpad_file)
    result, how = select_campaign(campaign_status(settings), campaign)
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    if not result.workflows:
        console.print(f"no workflows on {result.launchpad}")
        return
    for wf in result.workflows:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(wf.counts.items()))
        table = Table(
            title=f"{wf.name} [{wf.state}] campaign {(wf.campaign_id or '-')[:12]}: {counts}"
        )
        remote = result.runner == "jobflow-remote"
        ids, folder = ("db_id", "run dir") if remote else ("fw_id", "launch dir")
        for col in (ids, "job", "state", folder, "failure / custodian corrections"):
            table.add_column(col, overflow="fold")
        for fw in wf.fireworks:
            notes = [f"FAILED: {fw.failure}"] if fw.failure else []
            notes += [f"skipped (no VASP run): {fw.skipped}"] if fw.skipped else []
            notes += [
                f"{c.handler}: {', '.join(c.errors) or '-'} -> {'; '.join(c.actions) or '-'}"
                for c in fw.corrections
            ]
            name = fw.name
            if fw.stores_output_of:
                name = f"{fw.name} (output of {fw.stores_output_of})"
            table.add_row(
                str(fw.fw_id), name, fw.state, fw.launch_dir or "-", "\n".join(notes) or "-"
            )
        console.print(table)
    if result.other_campaigns:
        console.print(f"showing {how}; other campaigns (stale or older) on this LaunchPad:")
        for line in result.other_campaigns:
            console.print(f"  {line}")
    console.print(f"LaunchPad: {result.launchpad}")
