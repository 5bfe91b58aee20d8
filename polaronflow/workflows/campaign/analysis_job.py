"""The campaign's last job: analyse the finished runs and store the report in the JobStore.

The job receives, by job name, the run folder of the relaxed unit cell, of every static and of
each converged k-point static (resolving a reference loads the parent's whole task document, so
the ramp steps are left out). It lays them out as ``runs/<job name>`` symlinks in its own
folder — the layout ``polaronflow reproduce`` reads — and returns the analysis report
(polarons, in-gap levels, lattice changes, reaction energies) and the side-by-side reproduction
of the paper as plain JSON, so they end up in the JobStore beside the task documents. It runs
even when some parents failed or a U ramp was stopped: every missing run is listed with its
reason (``missing_reasons``: the job failed, or the ramp stopped at a named step because the
polarons delocalised), never invented.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from jobflow import job

from polaronflow import naming
from polaronflow.workflows.vasp.spec import local_path

#: Name of the analysis job in the campaign Flow.
ANALYSIS_JOB_NAME = naming.ANALYSIS


def link_runs(run_dirs: dict[str, str | None], dest: str | Path) -> dict[str, Path]:
    """Make ``dest/<job name>`` symlinks to each existing run folder; returns what was linked."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    linked = {}
    for name, dir_name in run_dirs.items():
        path = local_path(dir_name)
        if path is None or not path.is_dir():
            continue
        link = dest / name
        if link.is_symlink() or link.exists():
            continue
        os.symlink(path, link, target_is_directory=True)
        linked[name] = path
    return linked


def rank_search_statics(
    statics: dict[str, Path], ranking: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The full statics of a search, lowest final energy first, with ΔE (eV) to the lowest.

    Parameters
    ----------
    statics
        Static job name → its (local) run folder.
    ranking
        The screening ranking (rows with ``tag``), to carry each candidate's description.

    Returns
    -------
    list of dict
        ``job``, ``energy`` (eV), ``delta_e`` (eV), ``ground_state`` (bool), the polaron sites
        (0-based and VASP ion numbers), moments and spin state from the static's polaron
        check, and the screening row of the same candidate (``screening``).
    """
    import json

    from polaronflow.analysis.readers import read_run
    from polaronflow.errors import PolaronflowError
    from polaronflow.workflows.vasp.checks import CHECK_FILE

    by_number = {}
    for row in ranking or []:
        job = naming.parse_job_name(f"{row['tag']}-seed")
        if job is not None and job.screen is not None:
            by_number[job.screen] = row
    rows: list[dict[str, Any]] = []
    for name, folder in statics.items():
        row: dict[str, Any] = {"job": name, "energy": None, "reason": ""}
        try:
            row["energy"] = read_run(folder, eigen=False, dos=False).final_energy
        except PolaronflowError as exc:
            row["reason"] = str(exc)
        try:
            check = json.loads((Path(folder) / CHECK_FILE).read_text())
        except (OSError, ValueError):
            check = {}
        sites = list(check.get("polaron_sites") or [])
        row.update(
            localised=check.get("localised"),
            polaron_sites=sites,
            polaron_ions=[s + 1 for s in sites],
            polaron_moments=list(check.get("polaron_moments") or []),
        )
        job = naming.parse_job_name(name)
        row["nupdown"] = None if job is None else job.nupdown
        row["screening"] = by_number.get(None if job is None else job.config)
        rows.append(row)
    usable = sorted(
        (r for r in rows if r["energy"] is not None and r.get("localised") is not False),
        key=lambda r: r["energy"],
    )
    for r in rows:
        r["delta_e"] = None if r not in usable else r["energy"] - usable[0]["energy"]
        r["ground_state"] = bool(usable) and r is usable[0]
    return usable + [r for r in rows if r not in usable]


@job(name=ANALYSIS_JOB_NAME)
def analyse_campaign(
    run_dirs: dict[str, Any], searches: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Analyse the campaign's finished runs (see the module docstring).

    Parameters
    ----------
    run_dirs
        Job name → that job's run folder (a task document's ``dir_name``) or ``None`` when the
        job did not finish.
    searches
        Dopant label → the output of its search's selection job (``ranking``, ``selected``,
        ``statics``: static job name → run folder), or None when the search did not finish.

    Returns
    -------
    dict
        ``{"reproduction": ReproductionReport, "analysis": AnalysisReport, "runs": {...},
        "missing": [...]}`` as JSON-ready dicts.
    """
    from polaronflow.analysis.report import AnalysisOptions, analyze_runs, read_runs
    from polaronflow.analysis.reproduce import reproduce
    from polaronflow.errors import PolaronflowError
    from polaronflow.workflows.vasp.checks import read_check_file

    dirs: dict[str, str | None] = {}
    reasons: dict[str, str] = {}
    run_dirs = dict(run_dirs)
    for label, selection in (searches or {}).items():
        if not isinstance(selection, dict):
            reasons[naming.select_name(label)] = "the search's selection did not finish"
            continue
        run_dirs.update(selection.get("statics") or {})
    for name, dir_name in run_dirs.items():
        if not isinstance(dir_name, str):
            reasons[name] = "the job did not finish (failed, lost, or not run)"
            continue
        check = read_check_file(dir_name)
        if check is not None and check.get("action") == "skipped":
            # A ramp stopped upstream: the folder holds the reason, not a VASP run.
            reasons[name] = str(check.get("reason", "skipped"))
            continue
        dirs[name] = dir_name
    linked = link_runs(dirs, Path.cwd() / "runs")
    for name in set(dirs) - set(linked):
        reasons[name] = f"run folder {dirs[name]} is not on this machine"
    result: dict[str, Any] = {
        "runs": {name: str(path) for name, path in linked.items()},
        "missing": sorted(reasons),
        "missing_reasons": dict(sorted(reasons.items())),
    }
    if linked:
        try:
            result["reproduction"] = reproduce(Path.cwd() / "runs").model_dump(mode="json")
        except PolaronflowError as exc:
            result["reproduction_error"] = str(exc)
    else:
        result["reproduction_error"] = "no finished run to compare with the paper"
    static_roles = (naming.Role.RAMP_STATIC, naming.Role.SUPERCELL_STATIC)
    statics = [
        path
        for name, path in linked.items()
        if (job := naming.parse_job_name(name)) is not None and job.role in static_roles
    ]
    if searches:
        result["search"] = {}
        for label, selection in searches.items():
            if not isinstance(selection, dict):
                continue
            names = [n for n in (selection.get("statics") or {}) if n in linked]
            result["search"][label] = {
                "screening": selection.get("ranking", []),
                "selected": selection.get("selected", []),
                "full": rank_search_statics(
                    {n: linked[n] for n in names}, selection.get("ranking")
                ),
            }
    try:
        runs, errors = read_runs(statics, partial=True)
        report = analyze_runs(runs, AnalysisOptions(partial=True), read_errors=errors)
        result["analysis"] = report.model_dump(mode="json")
    except PolaronflowError as exc:
        result["analysis_error"] = str(exc)
    return result
