"""jobflow-remote as the runner: submit the campaign Flow to a jobflow-remote project.

jobflow-remote (the ``remote`` extra) keeps its queue in MongoDB and runs each job through its
runner daemon (``jf runner start``) on a worker named in its project file, which
``polaronflow init --runner jobflow-remote`` writes. The runner inserts each job's outputs
into the project's JobStore: the same store as the ``jobflow.yaml`` init writes beside it, so
``polaronflow collect --jobstore jobflow.yaml`` finds the finished runs.

Submission is idempotent as with FireWorks: the campaign fingerprint is stored in the flow's
metadata (:data:`~polaronflow.workflows.runtime.submit.CAMPAIGN_ID_KEY`) and a flow with the
same fingerprint in the project's queue is not added again unless ``force``. No message
carries the project file's credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from polaronflow.errors import ConfigError
from polaronflow.workflows.runtime.secrets import config_secrets, redact

if TYPE_CHECKING:
    from jobflow import Flow

    from polaronflow.settings import PolaronflowSettings

INSTALL_HINT = "pip install 'polaronflow[remote]'"


class JfSubmitResult(BaseModel):
    """What a jobflow-remote submission did."""

    flow_name: str = Field(description="Name of the flow in jobflow-remote's queue.")
    flow_uuid: str = Field(description="uuid of the flow (jobflow's).")
    db_ids: list[str] = Field(description="jobflow-remote DB ids of the jobs added.")
    n_jobs: int = Field(description="Number of jobs.")
    project: str = Field(description="jobflow-remote project name.")
    worker: str = Field(description="Worker the jobs run on.")
    campaign_id: str | None = Field(default=None, description="The campaign fingerprint.")
    already_submitted: bool = Field(
        default=False, description="True when nothing was added (same campaign already there)."
    )


def _project(name: str | None):
    """The jobflow-remote project (its pydantic model) and the file it came from."""
    try:
        from jobflow_remote.config.manager import ConfigManager
    except ImportError:
        raise ConfigError(
            f"the jobflow-remote runner needs jobflow-remote: {INSTALL_HINT}"
        ) from None
    try:
        manager = ConfigManager()
        project = manager.get_project(name)
        path = manager.projects_data[project.name].filepath
    except Exception as exc:  # jobflow-remote raises its ConfigError, pydantic errors, ...
        detail = " ".join(str(exc).split())
        raise ConfigError(
            f"jobflow-remote project {name or '(current)'} cannot be used: "
            f"{redact(detail, _all_project_secrets())}"
        ) from None
    return project, path


def _all_project_secrets() -> list[str]:
    from polaronflow.workflows.runtime.configfiles import jfremote_projects_folder

    folder = jfremote_projects_folder()
    paths = sorted(folder.glob("*.y*ml")) + sorted(folder.glob("*.json")) if folder.is_dir() else []
    return config_secrets(*paths)


def check_jfremote(
    settings: PolaronflowSettings, project: str | None = None, worker: str | None = None
):
    """The project (jobflow-remote's model), its file and the worker to submit to.

    Raises
    ------
    ConfigError
        jobflow-remote is not installed, the project cannot be read, the worker is unknown.
    """
    proj, path = _project(project or settings.jfremote_project)
    worker = worker or settings.jfremote_worker or next(iter(proj.workers), None)
    if worker is None or worker not in proj.workers:
        known = ", ".join(proj.workers) or "none"
        raise ConfigError(
            f"jobflow-remote project {proj.name} ({path}) has no worker {worker!r} "
            f"(workers: {known})"
        )
    return proj, path, worker


def submit_flow_jfremote(
    flow: Flow,
    settings: PolaronflowSettings,
    campaign_id: str | None = None,
    force: bool = False,
    metadata: dict[str, Any] | None = None,
    project: str | None = None,
    worker: str | None = None,
) -> JfSubmitResult:
    """Add ``flow`` to a jobflow-remote project's queue with jobflow-remote's ``submit_flow``.

    Parameters
    ----------
    flow
        The campaign Flow.
    settings
        polaronflow settings (``jfremote_project``, ``jfremote_worker``).
    campaign_id
        The campaign fingerprint, stored in the flow metadata; the same campaign is not added
        twice unless ``force``.
    force
        Add the flow even when the same campaign is already in the queue.
    metadata
        More flow metadata (``polaronflow_synthetic`` for emulator campaigns).
    project, worker
        Override the settings' project and worker.

    Returns
    -------
    JfSubmitResult

    Raises
    ------
    ConfigError
        jobflow-remote missing, an unusable project, an unknown worker, an uninitialised or
        unreachable queue database (credentials are never in the message).
    """
    from polaronflow.workflows.runtime.submit import CAMPAIGN_ID_KEY

    proj, path, worker = check_jfremote(settings, project, worker)
    secrets = config_secrets(path)
    if campaign_id is not None:
        flow.metadata = {**(flow.metadata or {}), CAMPAIGN_ID_KEY: campaign_id}
        flow.name = f"{flow.name}-{campaign_id[:8]}"
    if metadata:
        flow.metadata = {**(flow.metadata or {}), **metadata}
    from jobflow_remote import submit_flow

    try:
        controller = proj.get_job_controller()
        existing = (
            None
            if campaign_id is None or force
            else controller.flows.find_one(
                {f"metadata.{CAMPAIGN_ID_KEY}": campaign_id}, {"uuid": 1, "name": 1, "ids": 1}
            )
        )
        if existing is not None:
            ids = [str(i[0]) for i in existing.get("ids", [])]
            return JfSubmitResult(
                flow_name=existing.get("name", ""),
                flow_uuid=existing.get("uuid", ""),
                db_ids=ids,
                n_jobs=len(ids),
                project=proj.name,
                worker=worker,
                campaign_id=campaign_id,
                already_submitted=True,
            )
        db_ids = submit_flow(flow, worker=worker, project=proj.name)
    except ConfigError:
        raise
    except Exception as exc:
        detail = redact(" ".join(str(exc).split()), secrets).split(", Topology Desc")[0]
        if "not been initialised" in detail:
            raise ConfigError(
                f"cannot submit to jobflow-remote project {proj.name}: its queue database is not "
                "initialised; run `jf admin reset` once on a new database"
            ) from None
        raise ConfigError(
            f"cannot submit to jobflow-remote project {proj.name}: {type(exc).__name__}: {detail}"
        ) from None
    return JfSubmitResult(
        flow_name=flow.name,
        flow_uuid=flow.uuid,
        db_ids=[str(i) for i in db_ids],
        n_jobs=len(db_ids),
        project=proj.name,
        worker=worker,
        campaign_id=campaign_id,
    )


def campaign_jobs(
    settings: PolaronflowSettings, campaign: str | None = None
) -> tuple[list[str] | None, str]:
    """The job uuids of one campaign in the jobflow-remote queue, and how it was chosen.

    ``campaign`` is a campaign-id prefix (4 characters or more) or a jobflow-remote DB id of one
    of its jobs; default the only or the latest campaign. A queue without campaigns gives
    ``(None, "")`` (the whole JobStore is then taken, and a mix refused, by ``collect``).

    Raises
    ------
    InputError
        ``campaign`` matches no campaign or more than one.
    ConfigError
        The project or its queue cannot be read.
    """
    from polaronflow.errors import InputError
    from polaronflow.workflows.runtime.submit import CAMPAIGN_ID_KEY

    proj, path = _project(settings.jfremote_project)
    key = f"metadata.{CAMPAIGN_ID_KEY}"
    try:
        flows = list(
            proj.get_job_controller()
            .flows.find({key: {"$exists": True}}, {"name": 1, "jobs": 1, "ids": 1, "metadata": 1})
            .sort("created_on", 1)
        )
    except Exception as exc:
        raise _queue_error(proj, path, exc) from None
    if not flows:
        return None, ""
    if campaign is None:
        chosen = flows[-1]
        said = "the only" if len(flows) == 1 else f"the latest of {len(flows)} (--campaign):"
    else:
        text = campaign.strip().lower()
        found = [
            f
            for f in flows
            if (len(text) >= 4 and f["metadata"][CAMPAIGN_ID_KEY].startswith(text))
            or any(str(i[0]) == text for i in f.get("ids", []))
        ]
        if len(found) != 1:
            what = "matches no" if not found else "matches more than one"
            raise InputError(f"--campaign {campaign!r} {what} campaign (see `jf flow list`)")
        chosen, said = found[0], "the named"
    cid = chosen["metadata"][CAMPAIGN_ID_KEY]
    return list(chosen.get("jobs", [])), (
        f"{said} campaign {cid[:12]} '{chosen.get('name', '')}' (jobflow-remote project "
        f"{proj.name}, {len(chosen.get('ids') or chosen.get('jobs', []))} jobs)"
    )


def _queue_error(proj: Any, path: Any, exc: Exception) -> ConfigError:
    detail = redact(" ".join(str(exc).split()), config_secrets(path))
    return ConfigError(
        f"cannot read jobflow-remote project {proj.name}'s queue: {type(exc).__name__}: "
        f"{detail.split(', Topology Desc')[0]}"
    )


def project_jobstore(settings: PolaronflowSettings):
    """The JobStore of the jobflow-remote project (where its runner puts the outputs)."""
    proj, path = _project(settings.jfremote_project)
    try:
        return proj.get_jobstore()
    except Exception as exc:
        detail = redact(" ".join(str(exc).split()), config_secrets(path))
        raise ConfigError(f"jobflow-remote project {proj.name}'s JobStore: {detail}") from None
