"""``polaronflow demo``: the paper's campaign on the embedded LaunchPad, with the emulator as VASP.

The whole campaign (unit-cell and supercell relaxations, the U ramp for every dopant, the
final statics, the reference phases with their k-point convergence loops) is built by
:mod:`polaronflow.workflows`, submitted to a server-free FireWorks LaunchPad in the report
folder, and run by FireWorks' rocket launcher in two worker processes
(:func:`polaronflow.workflows.runtime.launch.launch_embedded`: the Mg and 2H branches and
the references run side by side). Every VASP job goes through custodian (handlers and
validators) with the mock-VASP emulator as ``VASP_CMD``. The run folders are then gathered
from the JobStore as ``runs/<job name>``
(:func:`polaronflow.workflows.runtime.collect.collect_runs`) for the analysis.

The VASP outputs are synthetic (scenario ``paper_like`` by default: shaped after the paper,
values deliberately offset) and the report says so first. To finish in minutes the demo uses a
U ramp in 2 eV steps and the fast parameters of :mod:`polaronflow.emulator.fast` (coarser k-mesh,
smaller NEDOS) unless told otherwise; both are written into the report. The supercell is the
paper's 2x2x2.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from polaronflow.analysis.rundata import SYNTHETIC_MARKER
from polaronflow.errors import InputError
from polaronflow.fileio import write_text_atomic

#: The demo's U schedule: the paper's 9 → 5 eV ramp in 2 eV steps (fewer 257-atom jobs).
DEMO_SCHEDULE: tuple[float, ...] = (9.0, 7.0, 5.0)

SYNTHETIC_BANNER = (
    f"**{SYNTHETIC_MARKER} — SYNTHETIC DATA.** Every VASP output in this report was written by "
    "the polaronflow mock-VASP emulator (scenario `{scenario}`), not by VASP. The numbers are "
    "deliberately NOT the paper's; nothing here is a reproduction."
)


class DemoJob(BaseModel):
    """One FireWorks job of the demo."""

    name: str = Field(description="Job (firework) name.")
    state: str = Field(description="FireWorks state (COMPLETED, FIZZLED, ...).")
    worker: str | None = Field(None, description="FWorker (worker process) that ran it.")
    launch_dir: str | None = Field(None, description="Folder the job ran in.")
    seconds: float | None = Field(None, description="Run time of the launch (s).")


class DemoResult(BaseModel):
    """What ``polaronflow demo`` did."""

    synthetic: bool = Field(True, description="Always True: the VASP outputs are synthetic.")
    scenario: str = Field(description="Emulator scenario used.")
    report_dir: str = Field(description="Report folder.")
    settings: dict = Field(description="Campaign options and parameter file used.")
    jobs: list[DemoJob] = Field(
        description="Every job of the campaign: launched ones in start order, then the rest."
    )
    seconds: float = Field(description="Total wall time (s).")
    comparison: str | None = Field(
        None, description="`polaronflow reproduce` of the runs as Markdown (None if it failed)."
    )
    comparison_error: str | None = Field(None, description="Why the comparison is missing.")
    analysis_summary: list[dict] = Field(
        default_factory=list, description="`polaronflow analyze` summary rows of the statics."
    )
    figures: list[str] = Field(default_factory=list, description="PNG files of the report.")
    analysis_error: str | None = Field(None, description="Why the analysis is missing.")

    @property
    def ok(self) -> bool:
        return bool(self.jobs) and all(j.state == "COMPLETED" for j in self.jobs)


def run_demo(
    out: str | Path = "polaronflow-demo",
    scenario: str = "paper_like",
    ions: list[str] | None = None,
    supercell: tuple[int, int, int] = (2, 2, 2),
    schedule: tuple[float, ...] = DEMO_SCHEDULE,
    paper_settings: bool = False,
    faults: list[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    force: bool = False,
    workers: int = 2,
) -> DemoResult:
    """Submit and run the campaign with the emulator; write the report folder.

    Parameters
    ----------
    out
        Report folder (created; must not already hold a demo).
    scenario
        Emulator scenario name or YAML path.
    ions
        Dopants (default: the paper's Mg and 2H).
    supercell
        Supercell multiples (default the paper's 2x2x2).
    schedule
        U schedule on W d (eV); the demo's default ramps 9 → 5 eV in 2 eV steps to save time
        (the campaign's default, and our reading of the paper, is 1 eV steps).
    paper_settings
        Use the project's parameter YAML unchanged instead of the fast demo parameters.
    faults
        ``"JOB_NAME_PART:FAULT"`` entries, e.g. ``"mg-ramp-u9:zbrent"``, injected so that
        custodian's corrections can be watched.
    progress
        Called as ``progress(done, total, job_name)`` whenever a job finishes.
    force
        Replace a previous demo in ``out`` (only a folder that holds a demo is removed).
    workers
        Worker processes running the jobs
        (:func:`polaronflow.workflows.runtime.launch.launch_embedded`;
        the two dopant branches and the references run side by side).

    Returns
    -------
    DemoResult
        Jobs, states and where everything is.

    Raises
    ------
    InputError
        The report folder already holds a demo, or a bad fault entry.
    """
    from fireworks import FWorker

    from polaronflow.emulator.fast import FAST_CHANGES, fast_parameters_file
    from polaronflow.emulator.mock import MockVasp, Patcher, emulator_command, install
    from polaronflow.emulator.scenario import load_scenario
    from polaronflow.errors import PolaronflowError
    from polaronflow.settings import load_settings
    from polaronflow.workflows.campaign.options import make_options
    from polaronflow.workflows.runtime.collect import collect_runs
    from polaronflow.workflows.runtime.launch import launch_embedded
    from polaronflow.workflows.runtime.submit import embedded_jobstore, submit_campaign

    start = time.monotonic()
    load_scenario(scenario)  # fail early on a bad scenario
    out = Path(out).resolve()
    project = out / "project"
    if project.exists() or (out / "demo.json").exists():
        if not force:
            raise InputError(
                f"report folder {out} already holds a demo; give another --out or --force"
            )
        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"report folder {out} exists and is not empty; give another --out")
    runs = out / "runs"
    out.mkdir(parents=True, exist_ok=True)
    params = None if paper_settings else fast_parameters_file(out / "demo_parameters.yaml")
    cmd = emulator_command(scenario)
    settings = load_settings(project_dir=project, vasp_cmd=cmd, potcar_spec=True)
    options = make_options(
        ions=list(ions or ["Mg", "2H"]),
        supercell=tuple(supercell),
        schedule=tuple(schedule),
        potcar_spec=True,
        vasp_cmd=cmd,
        parameters_file=params,
    )
    state = MockVasp(scenario=scenario, mode="custodian")
    for entry in faults or []:
        if ":" not in entry:
            raise InputError(f"--fault {entry!r}: use JOB_NAME_PART:FAULT, e.g. mg-ramp-u9:zbrent")
        needle, spec = entry.split(":", 1)
        state.fault(needle, spec)
    patcher = Patcher()
    install(patcher, state)
    cwd = os.getcwd()
    # Library INFO logs and parser warnings (no POTCAR files, ...) would bury the progress.
    logging.disable(logging.WARNING)
    warnings_ctx = warnings.catch_warnings()
    warnings_ctx.__enter__()
    warnings.simplefilter("ignore")
    try:
        submitted = submit_campaign(options, settings)
        launched = launch_embedded(
            project,
            workers=workers,
            launch_dir=out / "launches",
            fworker=FWorker(name="polaronflow-demo"),
            progress=progress,
            lock_timeout=settings.lock_timeout,
        )
    finally:
        os.chdir(cwd)
        patcher.undo()
        warnings_ctx.__exit__(None, None, None)
        logging.disable(logging.NOTSET)
    jobs = [
        DemoJob(
            name=r.name,
            state=r.state,
            worker=r.worker,
            launch_dir=r.launch_dir,
            seconds=r.seconds,
        )
        for r in launched.records
    ]
    # runs/<job name> -> its launch folder, from the JobStore: the layout `reproduce` reads
    try:
        collect_runs(embedded_jobstore(project), runs)
    except PolaronflowError:  # nothing finished: the comparison and analysis below say so
        runs.mkdir(parents=True, exist_ok=True)
    result = DemoResult(
        scenario=scenario,
        report_dir=str(out),
        settings={
            "options": options.model_dump(mode="json"),
            "parameters_file": str(params) if params else "templates/scan_u_incar.yaml",
            "fast_changes": {} if paper_settings else FAST_CHANGES,
            "workflow": submitted.workflow_name,
            "launchpad": submitted.launchpad,
            "jobstore": submitted.jobstore,
            "workers": workers,
        },
        jobs=jobs,
        seconds=time.monotonic() - start,
    )
    _compare(runs, result)
    _analyse(runs, out, result)
    _write_report(out, result)
    return result


def _compare(runs: Path, result: DemoResult) -> None:
    """Put the paper's numbers beside the (synthetic) runs, as ``polaronflow reproduce`` does."""
    from polaronflow.analysis.reproduce import reproduce
    from polaronflow.errors import PolaronflowError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result.comparison = reproduce(runs).to_markdown()
    except PolaronflowError as exc:
        result.comparison_error = str(exc)


def _analyse(runs: Path, out: Path, result: DemoResult) -> None:
    """``polaronflow analyze`` of the statics and ramps: analysis.json and figures/."""
    from polaronflow import naming
    from polaronflow.analysis.plots import write_report_plots
    from polaronflow.analysis.report import AnalysisOptions, analyze_runs, read_runs, summary_rows
    from polaronflow.errors import PolaronflowError

    roles = {p: naming.parse_job_name(p.name) for p in sorted(runs.iterdir()) if p.is_dir()}
    static_roles = (naming.Role.RAMP_STATIC, naming.Role.SUPERCELL_STATIC)
    statics = [p for p, j in roles.items() if j is not None and j.role in static_roles]
    ramps = [p for p, j in roles.items() if j is not None and j.role is naming.Role.RAMP_STEP]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # projected DOS only for the statics (the DOS figures); ramps need moments only
            data, errors = read_runs(statics, partial=True, pdos=True)
            more, more_errors = read_runs(ramps, partial=True)
            data, errors = data + more, errors + more_errors
            report = analyze_runs(data, AnalysisOptions(partial=True), read_errors=errors)
            write_text_atomic(out / "analysis.json", report.model_dump_json(indent=1))
            figures = write_report_plots(report, data, out / "figures")
        result.analysis_summary = summary_rows(report)
        result.figures = [str(f.relative_to(out)) for f in figures]
    except PolaronflowError as exc:
        result.analysis_error = str(exc)


def _write_report(out: Path, result: DemoResult) -> None:
    write_text_atomic(out / "demo.json", json.dumps(result.model_dump(mode="json"), indent=1))
    lines = [
        SYNTHETIC_BANNER.format(scenario=result.scenario),
        "",
        "# polaronflow demo",
        "",
        f"Campaign `{result.settings['workflow']}`: {len(result.jobs)} jobs on the embedded "
        f"LaunchPad `{result.settings['launchpad']}`, run by FireWorks' rocket launcher in "
        f"{result.settings.get('workers', 1)} worker process(es) with custodian and the mock-VASP "
        f"emulator as VASP, in {result.seconds:.0f} s.",
        "",
        f"Parameters: `{result.settings['parameters_file']}`"
        + (
            " (fast demo settings, not the paper's: "
            + ", ".join(f"{k} = {v}" for k, v in result.settings["fast_changes"].items())
            + ")"
            if result.settings["fast_changes"]
            else ""
        ),
        f"Supercell: {result.settings['options']['supercell']}; "
        f"U schedule: {result.settings['options'].get('schedule', '?')} eV; "
        f"ions: {', '.join(result.settings['options']['ions'])}.",
        "",
        "| # | job | state | seconds | worker | folder |",
        "|---|---|---|---|---|---|",
    ]
    for n, job in enumerate(result.jobs, start=1):
        secs = f"{job.seconds:.1f}" if job.seconds is not None else ""
        folder = Path(job.launch_dir).name if job.launch_dir else ""
        lines.append(f"| {n} | {job.name} | {job.state} | {secs} | {job.worker or ''} | {folder} |")
    lines += ["", "## Analysis of the statics and U ramps (`polaronflow analyze`)", ""]
    if result.analysis_summary:
        keys = list(result.analysis_summary[0])
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for row in result.analysis_summary:
            lines.append("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
        lines += ["", "Full report: `analysis.json`. Figures (titled SYNTHETIC):", ""]
        lines += [f"- [{Path(f).name}]({f})" for f in result.figures]
    else:
        lines.append(f"Not available: {result.analysis_error or 'not run'}")
    lines += ["", "## The paper's numbers beside these synthetic runs", ""]
    if result.comparison:
        # The Δ column shows the scenario's deliberate offsets, not a reproduction.
        lines.append(result.comparison.replace("\n# ", "\n### ", 1).removeprefix("# "))
    else:
        lines.append(f"Not available: {result.comparison_error or 'not run'}")
    write_text_atomic(out / "REPORT.md", "\n".join(lines) + "\n")
