"""``polaronflow inputs``, ``submit`` and ``init``: the campaign as VASP folders or workflows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer

from polaronflow.cli import app, skip_teardown

_ION = typer.Option(
    None,
    "--ion",
    help="Dopant, repeatable: a cation (Mg, Li, ...) or nH for n protons. "
    "Default: Mg and 2H (the paper).",
)
_CAVITY = typer.Option("auto", "--cavity", help="A-site cavity index for cations, or auto.")
_PLACEMENT = typer.Option("far", "--placement", help="Proton placement: far or near.")
_POLARONS = typer.Option(
    None, "--polarons", help="Polaron configuration, repeatable: auto or W indices '37,0'."
)
_NUPDOWN = typer.Option(
    None, "--nupdown", help="NUPDOWN variant, repeatable: free, 0 or 2 (default free)."
)
_SCHEDULE = typer.Option("9,8,7,6,5", "--schedule", help="U schedule on W d in eV, run order.")
_FINAL_ISIF = typer.Option(3, "--final-isif", help="ISIF of the last ramp step.")
_INTERMEDIATE_EDIFFG = typer.Option(
    None,
    "--intermediate-ediffg",
    help="EDIFFG (eV/Å, negative) of the ramp steps before the last (default: the paper's "
    "-0.01 on every step; the last step always keeps -0.01).",
)
_SUPERCELL = typer.Option((2, 2, 2), "--supercell", help="Supercell multiples.")
_HOST = typer.Option(None, "--host", help="Host CIF/POSCAR (default: embedded γ-WO3).")
_SEED_MOMENT = typer.Option(1.0, "--seed-moment", help="Initial moment on each seed W (μB).")
_STRETCH = typer.Option(0.0, "--stretch", help="Stretch the seed W–O bonds by this fraction.")
_NO_REFS = typer.Option(False, "--no-references", help="Leave out the reference phases.")
_POTCAR = typer.Option(
    None, "--potcar", help="POTCAR override, repeatable: ELEMENT=SYMBOL (e.g. Mg=Mg)."
)
_INCAR_YAML = typer.Option(
    None, "--incar-yaml", help="INCAR parameter YAML (default: templates/scan_u_incar.yaml)."
)


_SEARCH = typer.Option(
    False,
    "--search",
    help="Search the polaron ground state: screen every candidate configuration (both cavity "
    "orbits, pseudo-symmetry classes, NUPDOWN 0 and 2) cheaply, then run the full ramp for the "
    "--search-keep lowest.",
)
_SEARCH_KEEP = typer.Option(3, "--search-keep", help="Candidates per dopant given the full ramp.")
_SEARCH_LIMIT = typer.Option(
    None, "--search-limit", help="Screen at most this many candidates per dopant (budget cap)."
)
_SEARCH_TOL = typer.Option(
    0.3, "--search-tolerance", help="Pseudo-symmetry tolerance of the candidate classes (Å)."
)


def _nupdown(values: list[str] | None) -> list[int | None]:
    from polaronflow.errors import WorkflowError

    if not values:
        return [None]
    out: list[int | None] = []
    for v in values:
        text = v.strip().lower()
        if text in ("free", "none", ""):
            out.append(None)
            continue
        try:
            out.append(int(text))
        except ValueError:
            raise WorkflowError(f"--nupdown {v!r} is not valid: use free, 0, 2, ...") from None
    return out


def _cavity(value: str) -> int | str:
    from polaronflow.errors import WorkflowError

    if value.strip().lower() == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise WorkflowError(f"--cavity {value!r} is not valid: use auto or an index") from None


def _potcars(values: list[str] | None) -> dict[str, str]:
    from polaronflow.errors import WorkflowError

    out: dict[str, str] = {}
    for v in values or []:
        element, sep, symbol = v.partition("=")
        if not sep or not element.strip() or not symbol.strip():
            raise WorkflowError(f"--potcar {v!r} is not valid: use ELEMENT=SYMBOL, e.g. Mg=Mg")
        out[element.strip()] = symbol.strip()
    return out


def _options(**kw: Any):
    from polaronflow.workflows.campaign.options import make_options

    opts: dict[str, Any] = {
        "cavity": _cavity(kw["cavity"]),
        "placement": kw["placement"],
        "nupdown": _nupdown(kw["nupdown"]),
        "schedule": kw["schedule"],
        "final_isif": kw["final_isif"],
        "supercell": tuple(kw["supercell"]),
        "host": kw["host"],
        "seed_moment": kw["seed_moment"],
        "stretch": kw["stretch"],
        "references": not kw["no_references"],
        "parameters_file": kw["incar_yaml"],
        "potcars": _potcars(kw.get("potcar")),
    }
    if kw["ion"]:
        opts["ions"] = list(kw["ion"])
    if kw["polarons"]:
        opts["polarons"] = list(kw["polarons"])
    for key in (
        "potcar_spec",
        "walltime",
        "vasp_cmd",
        "polaron_check",
        "reseed_on_delocalisation",
        "reseed_stretch",
        "reseed_at_previous_u",
        "analysis",
        "search",
        "search_keep",
        "search_limit",
        "search_tolerance",
        "intermediate_ediffg",
    ):
        if kw.get(key) is not None:
            opts[key] = kw[key]
    return make_options(**opts)


@app.command()
def inputs(
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the job folders into."),
    ion: list[str] = _ION,
    cavity: str = _CAVITY,
    placement: str = _PLACEMENT,
    polarons: list[str] = _POLARONS,
    nupdown: list[str] = _NUPDOWN,
    schedule: str = _SCHEDULE,
    final_isif: int = _FINAL_ISIF,
    intermediate_ediffg: float = _INTERMEDIATE_EDIFFG,
    supercell: tuple[int, int, int] = _SUPERCELL,
    host: Path = _HOST,
    seed_moment: float = _SEED_MOMENT,
    stretch: float = _STRETCH,
    no_references: bool = _NO_REFS,
    incar_yaml: Path = _INCAR_YAML,
    potcar: list[str] = _POTCAR,
    search: bool = _SEARCH,
    search_keep: int = _SEARCH_KEEP,
    search_limit: int = _SEARCH_LIMIT,
    search_tolerance: float = _SEARCH_TOL,
    potcar_spec: bool = typer.Option(
        None,
        "--potcar-spec/--real-potcar",
        help="Write POTCAR.spec or real POTCARs (default: POTCAR only if PMG_VASP_PSP_DIR is set).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """Write every job's VASP input folder (a dry run) and print the plan."""
    kw = {k: v for k, v in locals().items() if k not in ("out", "force")}
    with _cyclic_gc_paused():
        _inputs(kw, out, potcar_spec, force, as_json)
    # Everything is written (moved into place) and printed: the console script may end now.
    skip_teardown()


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored on exit of the block).

    Importing pymatgen/atomate2 and building the 256-atom structures create hundreds of
    thousands of long-lived objects; the collector traversed them again and again (≈ 0.2 s of a
    ~2.7 s ``inputs``) to find a few thousand cyclic objects (< 1 MB, measured). Reference
    counting still frees everything else.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _inputs(kw: dict[str, Any], out: Path, potcar_spec, force: bool, as_json: bool) -> None:
    from polaronflow.workflows.campaign.dryrun import write_inputs
    from polaronflow.workflows.campaign.plan import plan_campaign

    options = _options(**kw)
    rows = write_inputs(plan_campaign(options), out, potcar_spec=potcar_spec, force=force)
    if as_json:
        import json

        typer.echo(json.dumps([r.model_dump() for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"polaronflow campaign: {sum(r.folder is not None for r in rows)} "
        f"input folders in {out}"
    )
    for col in ("job", "kind", "parents", "atoms", "k-points", "U (eV)", "note"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r.name,
            r.kind,
            ", ".join(r.parents) or "-",
            str(r.n_atoms),
            r.kpoints or "-",
            "-" if r.u is None else f"{r.u:g}",
            r.note,
        )
    Console(width=160).print(table)


@app.command()
def submit(
    ion: list[str] = _ION,
    cavity: str = _CAVITY,
    placement: str = _PLACEMENT,
    polarons: list[str] = _POLARONS,
    nupdown: list[str] = _NUPDOWN,
    schedule: str = _SCHEDULE,
    final_isif: int = _FINAL_ISIF,
    intermediate_ediffg: float = _INTERMEDIATE_EDIFFG,
    supercell: tuple[int, int, int] = _SUPERCELL,
    host: Path = _HOST,
    seed_moment: float = _SEED_MOMENT,
    stretch: float = _STRETCH,
    no_references: bool = _NO_REFS,
    incar_yaml: Path = _INCAR_YAML,
    potcar: list[str] = _POTCAR,
    search: bool = _SEARCH,
    search_keep: int = _SEARCH_KEEP,
    search_limit: int = _SEARCH_LIMIT,
    search_tolerance: float = _SEARCH_TOL,
    potcar_spec: bool = typer.Option(
        None, "--potcar-spec", help="Jobs write POTCAR.spec instead of POTCAR."
    ),
    walltime: int = typer.Option(None, "--walltime", help="Job wall time in s (custodian)."),
    vasp_cmd: str = typer.Option(None, "--vasp-cmd", help="VASP command for custodian."),
    polaron_check: bool = typer.Option(
        True,
        "--polaron-check/--no-polaron-check",
        help="Check after every ramp step and static that the electrons stayed localised; "
        "stop that ramp (with the reason) when they did not.",
    ),
    reseed_on_delocalisation: bool = typer.Option(
        False,
        "--reseed",
        help="Retry a delocalised ramp step once, fresh (no WAVECAR, ISTART 0), with the "
        "polaron seeds put back, before stopping the ramp.",
    ),
    reseed_stretch: float = typer.Option(
        0.03,
        "--reseed-stretch",
        help="Bond-distortion seed of the re-seeded retry (fraction of the W–O bonds).",
    ),
    reseed_at_previous_u: bool = typer.Option(
        False,
        "--reseed-at-previous-u",
        help="The re-seeded retry first re-localises at the previous, higher U.",
    ),
    analysis: bool = typer.Option(
        True,
        "--analysis/--no-analysis",
        help="End the campaign with the job that stores the analysis report in the JobStore.",
    ),
    emulator: bool = typer.Option(
        False,
        "--emulator",
        help="Run every job with polaronflow's mock-VASP emulator instead of VASP (no VASP, no "
        "POTCARs needed; implies --potcar-spec). Every output is SYNTHETIC.",
    ),
    local: bool = typer.Option(False, "--local", help="Run here with jobflow's run_locally."),
    root_dir: Path = typer.Option(None, "--root-dir", help="Run folders for --local."),
    config: Path = typer.Option(None, "--config", help="polaronflow settings YAML."),
    project_dir: Path = typer.Option(None, "--project-dir", help="Embedded store folder."),
    launchpad_file: Path = typer.Option(
        None, "--launchpad", help="my_launchpad.yaml of a MongoDB LaunchPad."
    ),
    jobstore_file: Path = typer.Option(None, "--jobstore", help="jobflow.yaml with JOB_STORE."),
    runner: str = typer.Option(
        None,
        "--runner",
        help="fireworks (a LaunchPad) or jobflow-remote (a jobflow-remote project's queue; the "
        "'remote' extra). Default: the settings' runner, fireworks.",
    ),
    jf_project: str = typer.Option(
        None, "--jf-project", help="jobflow-remote project (default: settings, then its current)."
    ),
    jf_worker: str = typer.Option(
        None, "--jf-worker", help="jobflow-remote worker (default: settings, then the first)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Submit even if the same campaign is already submitted."
    ),
) -> None:
    """Add the campaign to a FireWorks LaunchPad or a jobflow-remote queue, or run it locally.

    The LaunchPad is the embedded one by default; --runner jobflow-remote (or the settings'
    runner) submits to a jobflow-remote project instead. A campaign already submitted (same
    structures and settings) is not added twice: its ids are printed instead, unless --force.
    """
    from polaronflow.errors import ConfigError, InputError
    from polaronflow.settings import load_settings
    from polaronflow.workflows.campaign.fingerprint import campaign_fingerprint
    from polaronflow.workflows.campaign.maker import campaign_flow
    from polaronflow.workflows.campaign.plan import plan_campaign
    from polaronflow.workflows.runtime.submit import (
        check_configuration,
        run_flow_locally,
        submit_flow,
    )

    if emulator:
        from polaronflow.emulator.mock import emulator_command

        if vasp_cmd is not None:
            raise InputError("--emulator and --vasp-cmd exclude each other: choose one")
        vasp_cmd, potcar_spec = emulator_command(), True
    # Paths are resolved here: workers run in their own folders (a relative path would not
    # be found after FireWorks' chdir).
    host = _resolved(host, "--host")
    incar_yaml = _resolved(incar_yaml, "--incar-yaml")
    settings = load_settings(
        config,
        project_dir=project_dir,
        launchpad_file=launchpad_file,
        jobstore_file=jobstore_file,
        walltime=walltime,
        vasp_cmd=vasp_cmd,
        runner=runner,
        jfremote_project=jf_project,
        jfremote_worker=jf_worker,
    )
    kw = {
        k: v
        for k, v in locals().items()
        if k
        not in (
            "local",
            "root_dir",
            "config",
            "project_dir",
            "launchpad_file",
            "jobstore_file",
            "settings",
            "load_settings",
            "campaign_flow",
            "plan_campaign",
            "campaign_fingerprint",
            "run_flow_locally",
            "submit_flow",
            "check_configuration",
            "force",
            "emulator",
            "ConfigError",
            "InputError",
            "runner",
            "jf_project",
            "jf_worker",
        )
    }
    options = _options(**kw | {"walltime": settings.walltime, "vasp_cmd": settings.vasp_cmd})
    if settings.runner == "fireworks":
        check_configuration(settings)
    else:
        from polaronflow.workflows.runtime.jfremote import check_jfremote

        check_jfremote(settings)  # before the campaign is built
    if potcar_spec is None and settings.potcar_spec is not None:
        options = options.model_copy(update={"potcar_spec": settings.potcar_spec})
    if not options.potcar_spec and not local:
        from polaronflow.workflows.campaign.dryrun import potcar_available

        if not potcar_available():
            # the same rule as `inputs`, but a campaign without POTCARs cannot run: refuse it
            raise ConfigError(
                "no POTCARs: PMG_VASP_PSP_DIR is not configured, so VASP jobs would fail; set "
                "it (pmg config), or try the workflow with --emulator (synthetic outputs)"
            )
    plan = plan_campaign(options)
    flow = campaign_flow(plan)
    if local:
        run_flow_locally(flow, settings, root_dir=root_dir)
        typer.echo(f"ran {len(flow.jobs)} jobs locally")
        return
    if settings.runner == "jobflow-remote":
        _submit_jfremote(flow, settings, campaign_fingerprint(options, plan), force, emulator)
        return
    result = submit_flow(
        flow,
        settings,
        campaign_id=campaign_fingerprint(options, plan),
        force=force,
        metadata={"polaronflow_synthetic": True} if emulator else None,
    )
    if emulator:
        typer.echo(
            "SYNTHETIC: every job of this campaign runs polaronflow's mock-VASP emulator, not "
            "VASP; its outputs are not DFT results"
        )
    if result.already_submitted:
        # Not an error: re-running a submit script must be safe.
        typer.echo(
            f"campaign {result.campaign_id[:12]} is already submitted as workflow "
            f"'{result.workflow_name}' (FireWorks ids {_id_ranges(result.fw_ids)}) on "
            f"{result.launchpad}; nothing added (use --force to submit it again)"
        )
        return
    typer.echo(
        f"submitted workflow '{result.workflow_name}' (campaign {result.campaign_id[:12]}): "
        f"{result.n_jobs} jobs, FireWorks ids "
        f"{result.fw_ids[0]}-{result.fw_ids[-1]} on {result.launchpad}; outputs to "
        f"{result.jobstore}"
    )


def _submit_jfremote(flow, settings, campaign_id: str, force: bool, emulator: bool) -> None:
    from polaronflow.workflows.runtime.jfremote import submit_flow_jfremote

    result = submit_flow_jfremote(
        flow,
        settings,
        campaign_id=campaign_id,
        force=force,
        metadata={"polaronflow_synthetic": True} if emulator else None,
    )
    if emulator:
        typer.echo(
            "SYNTHETIC: every job of this campaign runs polaronflow's mock-VASP emulator, not "
            "VASP; its outputs are not DFT results"
        )
    where = f"jobflow-remote project {result.project}, worker {result.worker}"
    if result.already_submitted:
        typer.echo(
            f"campaign {campaign_id[:12]} is already submitted as flow '{result.flow_name}' "
            f"({result.n_jobs} jobs) to {where}; nothing added (use --force to submit it again)"
        )
        return
    typer.echo(
        f"submitted flow '{result.flow_name}' (campaign {campaign_id[:12]}): {result.n_jobs} "
        f"jobs, DB ids {result.db_ids[0]}-{result.db_ids[-1]} to {where}; run them with "
        "`jf runner start`, follow them with `polaronflow status` (or `jf job list`)"
    )


def _resolved(path: Path | None, flag: str) -> Path | None:
    """``path`` made absolute (as the user meant it from here); a missing file is bad input."""
    if path is None:
        return None
    from polaronflow.errors import InputError

    full = Path(path).expanduser().resolve()
    if not full.is_file():
        raise InputError(f"{flag} {path}: no such file")
    return full


def _id_ranges(ids: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``'1-3, 7'``."""
    parts: list[list[int]] = []
    for i in sorted(ids):
        if parts and parts[-1][1] == i - 1:
            parts[-1][1] = i
        else:
            parts.append([i, i])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in parts) or "none"


@app.command()
def init(
    out: Path = typer.Option(Path("."), "--out", "-o", help="Folder for the config files."),
    project_dir: Path = typer.Option(
        None, "--project-dir", help="Project folder (default: the settings' project_dir)."
    ),
    mongodb: bool = typer.Option(False, "--mongodb", help="Configure a MongoDB server."),
    queue: str = typer.Option("slurm", "--queue", help="Queue system: slurm or pbs."),
    vasp_cmd: str = typer.Option("srun vasp_std", "--vasp-cmd", help="VASP command."),
    vasp_gamma_cmd: str = typer.Option("srun vasp_gam", "--vasp-gamma-cmd", help="Γ-only VASP."),
    mongo_host: str = typer.Option(
        "localhost", "--mongo-host", help="MongoDB server host (--mongodb)."
    ),
    mongo_port: int = typer.Option(27017, "--mongo-port", help="MongoDB server port (--mongodb)."),
    mongo_db: str = typer.Option("polaronflow", "--mongo-db", help="Database name (--mongodb)."),
    runner: str = typer.Option(
        "fireworks",
        "--runner",
        help="fireworks, or jobflow-remote: its project file (a local worker, the MongoDB queue "
        "and JobStore) instead of the FireWorks files; implies MongoDB.",
    ),
    jf_project: str = typer.Option(
        "polaronflow", "--jf-project", help="jobflow-remote project name (--runner jobflow-remote)."
    ),
    jf_worker: str = typer.Option(
        "local", "--jf-worker", help="jobflow-remote worker name (--runner jobflow-remote)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite existing files."),
) -> None:
    """Write FireWorks, jobflow, atomate2 and polaronflow config files from the templates.

    For a cluster (--mongodb): LaunchPad, FWorker, queue adapter and FW_config too; for the
    embedded store no FireWorks files (FireWorks' own commands would overwrite the store).
    With --runner jobflow-remote: jobflow-remote's project file (in its projects folder,
    ~/.jfremote) instead of the FireWorks files.
    The MongoDB user name and password are never taken on the command line (shell history):
    edit my_launchpad.yaml and jobflow.yaml (written 0600), or the project file.
    """
    from polaronflow.workflows.runtime.configfiles import write_config_templates

    if project_dir is None:
        from polaronflow.settings import load_settings

        project_dir = load_settings().project_dir
    jfremote = runner == "jobflow-remote"
    project_path = Path(project_dir).expanduser()
    if not (mongodb or jfremote) and project_path.exists() and not project_path.is_dir():
        from polaronflow.errors import ConfigError

        # Checked first: the templates would otherwise be written before the store fails.
        raise ConfigError(f"--project-dir {project_dir}: exists and is not a folder")
    written = write_config_templates(
        out,
        project_dir,
        mongodb=mongodb,
        queue=queue,
        vasp_cmd=vasp_cmd,
        vasp_gamma_cmd=vasp_gamma_cmd,
        mongo_host=mongo_host,
        mongo_port=mongo_port,
        mongo_db=mongo_db,
        force=force,
        runner=runner,
        jf_project=jf_project,
        jf_worker=jf_worker,
    )
    from polaronflow.workflows.runtime.configfiles import exports

    for path in written:
        typer.echo(f"wrote {path}")
    if jfremote:
        typer.echo(
            f"edit {written[-1]} (MongoDB host, user, password of the queue and the JobStore; "
            "the worker) and jobflow.yaml (the same JobStore, for `polaronflow collect`); on a "
            "new database run `jf admin reset` once; then `polaronflow submit`, "
            "`jf runner start`, `jf job list`. In every shell (and ~/.bashrc):"
        )
        for line in exports(out, True, jf_project=jf_project):
            typer.echo(line)
        import importlib.util

        if importlib.util.find_spec("jobflow_remote") is None:
            # the worker's jobs run `jf` from this environment (the project file's pre_run)
            typer.echo(
                "jobflow-remote is not installed in this environment: pip install "
                "'polaronflow[remote]'",
                err=True,
            )
        return
    if mongodb:
        typer.echo(
            "edit my_launchpad.yaml and jobflow.yaml (MongoDB host, user, password), "
            "my_qadapter.yaml (nodes, walltime, account); then, in every shell (and ~/.bashrc):"
        )
    else:
        typer.echo(
            "embedded store (no server): `polaronflow submit`, then `polaronflow launch`; no "
            "FireWorks files are written for it (FireWorks' own commands would overwrite it). "
            "For your own jobflow scripts:"
        )
    for line in exports(out, mongodb):
        typer.echo(line)
