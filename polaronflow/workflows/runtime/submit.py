"""Submission: a FireWorks LaunchPad (embedded or MongoDB) with a JobStore, or a local run.

Embedded (the default, no server): one project folder (``settings.project_dir``) holds

* ``launchpad.json`` — FireWorks' LaunchPad on mongomock, persisted as one JSON file
  (the ``fireworks[mongomock]`` extra: mongomock-persistence's file format); while a
  LaunchPad is open its saves are appended to ``launchpad.journal`` and folded back into
  ``launchpad.json`` when it closes (:mod:`~polaronflow.workflows.runtime.lpfile`);
* ``jobstore/`` — the jobflow JobStore, one SQLite file with indexed fields
  (:class:`~polaronflow.workflows.runtime.montystore.SQLiteStore`, safe for several workers);
* ``launchpad.lock`` — a ``filelock.FileLock``.

mongomock-persistence reads its file when a client is made and writes it when the client is
garbage-collected (at process exit). Two processes would each write back their own copy and
one workflow would be lost. :func:`embedded_launchpad` therefore opens the file only under
the lock, writes it back explicitly and atomically (temporary file + rename; journal lines
appended and synced in between) before releasing the lock, and never lets
mongomock-persistence write at exit. MongoDB (a
``my_launchpad.yaml`` plus a ``jobflow.yaml``) is the answer for many concurrent workers.

Submission is idempotent: a campaign is identified by its fingerprint
(:func:`polaronflow.workflows.campaign.fingerprint.campaign_fingerprint`: its
options, resolved start structures and input-set settings), stored in the workflow metadata
under :data:`CAMPAIGN_ID_KEY`; the same campaign again adds nothing unless ``force``. On the
embedded store the check and the addition happen under one lock; on MongoDB two submissions
of the same campaign at the same instant can still both pass the check.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from pydantic import BaseModel, Field

from polaronflow.errors import ConfigError
from polaronflow.fileio import write_text_atomic
from polaronflow.workflows.runtime.secrets import config_secrets, redact

if TYPE_CHECKING:
    from fireworks import LaunchPad
    from jobflow import Flow, JobStore

    from polaronflow.settings import PolaronflowSettings
    from polaronflow.workflows.campaign.options import CampaignOptions

LAUNCHPAD_FILE = "launchpad.json"
LOCK_FILE = "launchpad.lock"
JOBSTORE_DIR = "jobstore"
RUNS_DIR = "runs"


class SubmitResult(BaseModel):
    """What a submission did."""

    workflow_name: str = Field(description="Name of the FireWorks workflow.")
    fw_ids: list[int] = Field(description="FireWorks ids of the workflow's fireworks.")
    n_jobs: int = Field(description="Number of fireworks (jobs) added.")
    launchpad: str = Field(description="Where the LaunchPad lives (file or MongoDB host/db).")
    jobstore: str = Field(description="Where job outputs will be stored.")
    campaign_id: str | None = Field(
        default=None,
        description="Fingerprint (sha256 hex) of the campaign's structures and settings, stored "
        "in the workflow metadata; None for a Flow submitted without one.",
    )
    already_submitted: bool = Field(
        default=False,
        description="True when nothing was added because a workflow with the same campaign_id "
        "is already on the LaunchPad (fw_ids are then that workflow's).",
    )


def _settings(settings: PolaronflowSettings | None) -> PolaronflowSettings:
    if settings is not None:
        return settings
    from polaronflow.settings import load_settings

    return load_settings()


@contextlib.contextmanager
def embedded_launchpad(
    project_dir: str | Path | None = None,
    timeout: float | None = None,
    read_only: bool = False,
) -> Iterator[LaunchPad]:
    """Open the embedded LaunchPad under its file lock; save it atomically on success.

    Use it for everything that touches the embedded store (adding workflows, ``rapidfire``,
    queries); nothing is saved if the block raises. The LaunchPad it yields has a
    ``polaronflow_checkpoint()`` function that saves the store as it is now (while the lock
    is held; the first time the whole file atomically, then the changed documents appended to
    ``launchpad.journal`` and synced, see :class:`~.lpfile.StoreFile`): long blocks such as
    ``polaronflow launch`` call it as jobs start and finish, so read-only readers see the
    progress. Closing writes the whole file again and removes the journal.

    Parameters
    ----------
    project_dir
        The project folder; default ``settings.project_dir``.
    timeout
        Seconds to wait for the lock; default ``settings.lock_timeout``.
    read_only
        Read the last saved state without taking the lock (for ``polaronflow status`` while a
        launch holds it): the file is only ever replaced by an atomic rename and the journal
        only appended to, so what is read is always a whole saved state.
        Nothing is created or saved; a project without a LaunchPad file reads as empty.

    Yields
    ------
    fireworks.LaunchPad
        A LaunchPad on the file-backed mongomock store.

    Raises
    ------
    ConfigError
        The lock cannot be taken in time, or the LaunchPad file is unreadable.
    """
    if project_dir is None or timeout is None:
        s = _settings(None)
        project_dir = s.project_dir if project_dir is None else project_dir
        timeout = s.lock_timeout if timeout is None else timeout
    project = Path(project_dir).expanduser()
    db_file = project / LAUNCHPAD_FILE
    if read_only:
        with _read_only_launchpad(db_file) as lp:
            yield lp
        return
    from filelock import FileLock, Timeout

    try:
        project.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create project folder {project}: {exc.strerror}") from exc
    lock = FileLock(str(project / LOCK_FILE), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"embedded LaunchPad {db_file} is locked by another process for more than "
            f"{timeout:g} s (lock file {project / LOCK_FILE})"
        ) from None
    try:
        if not db_file.exists():
            write_text_atomic(db_file, "{}")
        store = _open_server_store(db_file)
        lp = _launchpad_on(store)

        # the first save writes the whole file; later ones append the changed documents to
        # launchpad.journal (lpfile.StoreFile); closing folds the journal into the file
        def checkpoint() -> None:
            # a plain function, as launch's _serialise leaves it alone (not a bound method)
            store._pf_file.save()

        lp.polaronflow_checkpoint = checkpoint
        yield lp
        store._pf_file.close()
    finally:
        lock.release()


@contextlib.contextmanager
def _read_only_launchpad(db_file: Path) -> Iterator[LaunchPad]:
    import tempfile

    if db_file.parent.exists() and not db_file.parent.is_dir():
        raise ConfigError(f"project folder {db_file.parent} is not a folder")
    with tempfile.TemporaryDirectory(prefix="polaronflow-lp-") as tmp:
        source = db_file
        if not db_file.is_file():
            source = Path(tmp) / LAUNCHPAD_FILE
            source.write_text("{}", encoding="utf-8")
        lp = _launchpad_on(_open_server_store(source), initialise=False)
        lp.polaronflow_checkpoint = None  # nothing is ever saved
        yield lp


def _open_server_store(db_file: Path):
    """mongomock's store read from ``db_file`` (one parse; see :mod:`.lpfile`).

    mongomock-persistence's own ``ServerStore`` would read the file too, and write it back at
    garbage collection / exit, outside the lock, overwriting workflows another process added
    in the meantime: the store built here has no such write.
    """
    from polaronflow.workflows.runtime.lpfile import load_store

    with _file_errors(db_file):
        return load_store(db_file)


@contextlib.contextmanager
def _file_errors(db_file: Path) -> Iterator[None]:
    """An unreadable LaunchPad file or one of the wrong shape as a one-line ConfigError."""
    from polaronflow.workflows.runtime.lpfile import WrongShapeError

    try:
        yield
    except WrongShapeError:
        # anything else would fail deep inside mongomock with a traceback
        raise ConfigError(
            f"embedded LaunchPad file {db_file} is not a LaunchPad store (wrong shape); "
            "restore it from a backup or move it away"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"embedded LaunchPad file {db_file} cannot be read: {exc}") from exc


#: The embedded LaunchPad's database name (``LaunchPad(name=...)``).
LAUNCHPAD_DB = "fireworks"


def read_embedded_documents(
    project_dir: str | Path, collections: list[str]
) -> dict[str, list[dict[str, Any]]]:
    """The documents of the embedded LaunchPad's ``collections`` as last saved.

    Read without the lock (the file is only replaced atomically and its journal only appended
    to, so what is read is a whole saved state) and without FireWorks or mongomock, for
    read-only views such as ``polaronflow status``. Extended JSON stays as written
    (``{"$date": ...}``, ``{"$oid": ...}``). A project without a LaunchPad file reads as empty.

    Raises
    ------
    ConfigError
        The project path is not a folder, or the file is unreadable or of the wrong shape.
    """
    from polaronflow.workflows.runtime.lpfile import documents, read_state

    project = Path(project_dir).expanduser()
    db_file = project / LAUNCHPAD_FILE
    if project.exists() and not project.is_dir():
        raise ConfigError(f"project folder {project} is not a folder")
    if not db_file.is_file():
        return {name: [] for name in collections}
    with _file_errors(db_file):
        data = read_state(db_file, raw=True)
        return {name: documents(data, LAUNCHPAD_DB, name) for name in collections}


def _launchpad_on(store, initialise: bool = True) -> LaunchPad:
    import fireworks.core.launchpad as lp_module
    import mongomock
    import mongomock.gridfs
    from fireworks import LaunchPad

    mongomock.gridfs.enable_gridfs_integration()

    def client(*args: Any, **kwargs: Any) -> mongomock.MongoClient:
        return mongomock.MongoClient(*args, _store=store, **kwargs)

    # FireWorks picks its MongoClient class when it is first imported; an explicit client on
    # our store works whichever class that was.
    with mock.patch.object(lp_module, "MongoClient", client):
        lp = LaunchPad(name=LAUNCHPAD_DB, strm_lvl="ERROR")
    if initialise and lp.fw_id_assigner.find_one({}) is None:
        lp.reset("", require_password=False)
    return lp


def embedded_jobstore(project_dir: str | Path | None = None) -> JobStore:
    """The embedded JobStore: one SQLite file under ``project_dir/jobstore``.

    The stores are :class:`~polaronflow.workflows.runtime.montystore.SQLiteStore` (maggma
    stores with indexed ``uuid``, ``index``, ``completed_at``, ...; safe for several workers);
    a montydb store left by an earlier version is copied in once (see
    :func:`~polaronflow.workflows.runtime.montystore.embedded_stores`).

    Parameters
    ----------
    project_dir
        The project folder; default ``settings.project_dir``.

    Returns
    -------
    jobflow.JobStore
        Docs in collection ``outputs``, large data (atomate2's ``data``) in ``outputs_blobs``.
    """
    from jobflow import JobStore

    from polaronflow.workflows.runtime.montystore import embedded_stores

    project = Path(project_dir if project_dir is not None else _settings(None).project_dir)
    docs, blobs = embedded_stores((project.expanduser() / JOBSTORE_DIR).resolve())
    return JobStore(docs, additional_stores={"data": blobs})


def jobstore_from_file(path: str | Path) -> JobStore:
    """Read a JobStore from a ``jobflow.yaml`` (``JOB_STORE:`` section) or a store spec file.

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, or not a JobStore specification.
    """
    import yaml
    from jobflow import JobStore

    p = Path(path).expanduser()
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        detail = redact(" ".join(str(exc).split()), config_secrets(p))
        raise ConfigError(f"JobStore file {p} cannot be read: {detail}") from None
    if isinstance(data, dict) and "JOB_STORE" in data:
        data = data["JOB_STORE"]
    if isinstance(data, dict) and data.get("@class") == "JobStore":
        try:  # a serialised JobStore (polaronflow init's embedded jobflow.yaml)
            return JobStore.from_dict(data)
        except Exception as exc:  # monty raises many types
            detail = redact(" ".join(str(exc).split()), config_secrets(p))
            raise ConfigError(f"JobStore file {p} is not a valid JobStore: {detail}") from None
    if not isinstance(data, dict) or "docs_store" not in data:
        raise ConfigError(f"JobStore file {p} has no JOB_STORE/docs_store specification")
    try:
        return JobStore.from_dict_spec(data)
    except Exception as exc:  # maggma raises many types for a bad spec
        detail = redact(" ".join(str(exc).split()), config_secrets(p))
        raise ConfigError(
            f"JobStore file {p} is not a valid store specification: {detail}"
        ) from None


def check_configuration(settings: PolaronflowSettings | None = None) -> None:
    """Fail early (before a campaign is built) on unreadable LaunchPad/JobStore files.

    Raises
    ------
    ConfigError
        A configured ``launchpad_file`` or ``jobstore_file`` that cannot be read.
    """
    s = _settings(settings)
    if s.launchpad_file is not None:
        _load_launchpad_file(s.launchpad_file)
    if s.jobstore_file is not None:
        jobstore_from_file(s.jobstore_file)


def launchpad_secrets(path: str | Path | None) -> list[str]:
    """Credentials written in a LaunchPad or JobStore file (see :mod:`.secrets`)."""
    return config_secrets(path)


def _load_launchpad_file(path: Path) -> LaunchPad:
    from fireworks import LaunchPad

    if not path.is_file():
        raise ConfigError(f"LaunchPad file {path} does not exist")
    try:
        return LaunchPad.from_file(str(path))
    except Exception as exc:  # yaml, monty and FireWorks raise many types
        # yaml quotes the offending line, which may be the password line
        detail = redact(" ".join(str(exc).split()), launchpad_secrets(path))
        raise ConfigError(f"LaunchPad file {path} cannot be read: {detail}") from None


def _db_error(settings: PolaronflowSettings, what: str, exc: BaseException) -> ConfigError:
    secrets = config_secrets(settings.launchpad_file, settings.jobstore_file)
    detail = redact(" ".join(str(exc).split()), secrets)
    # pymongo appends its whole topology description: the first part says what went wrong
    detail = re.sub(r" \(configured timeouts:[^)]*\)", "", detail.split(", Topology Desc")[0])
    return ConfigError(f"{what}: {type(exc).__name__}: {detail}")


def _is_db_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("pymongo", "mongomock", "bson")


@contextlib.contextmanager
def open_launchpad(
    settings: PolaronflowSettings | None = None, read_only: bool = False
) -> Iterator[LaunchPad]:
    """The configured LaunchPad: MongoDB from ``settings.launchpad_file`` or the embedded one.

    ``read_only`` opens the embedded store without its lock (see :func:`embedded_launchpad`).

    Raises
    ------
    ConfigError
        An unreadable LaunchPad file or an embedded store that cannot be opened.
    """
    s = _settings(settings)
    if s.launchpad_file is None:
        with embedded_launchpad(s.project_dir, s.lock_timeout, read_only=read_only) as lp:
            yield lp
        return
    yield _load_launchpad_file(s.launchpad_file)


def _jobstore(settings: PolaronflowSettings) -> JobStore | None:
    if settings.jobstore_file is not None:
        return jobstore_from_file(settings.jobstore_file)
    if settings.launchpad_file is None:
        return embedded_jobstore(settings.project_dir)
    return None  # MongoDB without a jobflow.yaml: the worker's own JOB_STORE setting


#: Key of the campaign fingerprint in a FireWorks workflow's metadata.
CAMPAIGN_ID_KEY = "polaronflow_campaign_id"


def submit_flow(
    flow: Flow,
    settings: PolaronflowSettings | None = None,
    store: JobStore | None = None,
    campaign_id: str | None = None,
    force: bool = False,
    metadata: dict[str, Any] | None = None,
) -> SubmitResult:
    """Convert a Flow to a FireWorks workflow and add it to the configured LaunchPad.

    Parameters
    ----------
    flow
        The jobflow Flow.
    settings
        polaronflow settings (LaunchPad/JobStore location); default :func:`load_settings`.
    store
        JobStore the workers write outputs to; default the configured one.
    campaign_id
        A fingerprint (:func:`campaign_fingerprint`) stored in the workflow metadata. When a
        workflow with the same fingerprint is already on the LaunchPad nothing is added and
        the result says so (``already_submitted``), unless ``force``.
    force
        Add the workflow even when the same campaign is already there.
    metadata
        More workflow metadata (e.g. ``polaronflow_synthetic`` for emulator campaigns).

    Returns
    -------
    SubmitResult
        Workflow name and FireWorks ids.

    Raises
    ------
    ConfigError
        The LaunchPad cannot be read or written (credentials are never in the message).
    """
    from jobflow.managers.fireworks import flow_to_workflow

    s = _settings(settings)
    store = store if store is not None else _jobstore(s)
    # No ``store=``: jobflow would serialise the whole JobStore, credentials included, into
    # every Firework (and so into each launch folder's FW.json). As atomate2 does, workers use
    # their own JobStore: jobflow's JOB_STORE from JOBFLOW_CONFIG_FILE (MongoDB), or the
    # project's embedded store, which `polaronflow launch` gives its workers.
    wf = flow_to_workflow(flow)
    if campaign_id is not None:
        wf.metadata = {**(wf.metadata or {}), CAMPAIGN_ID_KEY: campaign_id}
        wf.name = f"{wf.name}-{campaign_id[:8]}"  # campaigns on one LaunchPad: distinct names
    if metadata:
        wf.metadata = {**(wf.metadata or {}), **metadata}
    where = (
        str(s.project_dir / LAUNCHPAD_FILE) if s.launchpad_file is None else str(s.launchpad_file)
    )
    with open_launchpad(s) as lp:
        try:
            # Checked and added under the embedded store's lock, so two identical embedded
            # submissions cannot both pass the check.
            existing = (
                None
                if campaign_id is None or force
                else lp.workflows.find_one(
                    {f"metadata.{CAMPAIGN_ID_KEY}": campaign_id}, {"nodes": 1, "name": 1}
                )
            )
            if s.launchpad_file is not None:
                _initialise_if_new(lp)
            if existing is not None:
                return SubmitResult(
                    workflow_name=existing.get("name", ""),
                    fw_ids=sorted(int(i) for i in existing.get("nodes", [])),
                    n_jobs=len(existing.get("nodes", [])),
                    launchpad=where,
                    jobstore=_describe_store(store),
                    campaign_id=campaign_id,
                    already_submitted=True,
                )
            mapping = lp.add_wf(wf)
        except Exception as exc:
            if _is_db_error(exc):
                raise _db_error(s, "cannot add the workflow to the LaunchPad", exc) from None
            raise
    return SubmitResult(
        workflow_name=wf.name,
        fw_ids=sorted(int(v) for v in mapping.values()),
        n_jobs=len(wf.fws),
        launchpad=where,
        jobstore=_describe_store(store),
        campaign_id=campaign_id,
    )


def _initialise_if_new(lp: LaunchPad) -> None:
    """Give a never-used MongoDB LaunchPad its id counters (what ``lpad reset`` would do).

    Only a database without fireworks is touched, so nothing can be lost; unlike
    ``LaunchPad.reset`` nothing is dropped.
    """
    if lp.fw_id_assigner.find_one({}) is None and lp.fireworks.find_one({}) is None:
        lp.fw_id_assigner.update_one(
            {}, {"$setOnInsert": {"next_fw_id": 1, "next_launch_id": 1}}, upsert=True
        )


def _describe_store(store: JobStore | None) -> str:
    """Where outputs go, for messages: never with credentials (a URI loses its user:pass@)."""
    if store is None:
        return "the workers' jobflow JOB_STORE (JOBFLOW_CONFIG_FILE)"
    docs = store.docs_store
    path = getattr(docs, "database_path", None)
    if path is None:
        host = getattr(docs, "host", None) or getattr(docs, "uri", None)
        db = getattr(docs, "database", None) or getattr(docs, "database_name", None)
        where = "/".join(str(x) for x in (host, db) if x) or getattr(docs, "name", "")
        secrets = [str(getattr(docs, k)) for k in ("username", "password") if getattr(docs, k, 0)]
        return redact(f"{type(docs).__name__} {where}".strip(), secrets)
    return f"{type(docs).__name__} {path}".strip()


def submit_campaign(
    options: CampaignOptions | None = None,
    settings: PolaronflowSettings | None = None,
    force: bool = False,
    **option_kwargs: Any,
) -> SubmitResult:
    """Plan the campaign, build its Flow (:func:`~polaronflow.workflows.campaign.maker`) and
    submit it.

    A campaign already on the LaunchPad (same :func:`campaign_fingerprint`) is not added again
    unless ``force``; the result then has ``already_submitted=True`` and the existing ids.

    Parameters
    ----------
    options
        Campaign options (or give them as keywords).
    settings
        polaronflow settings; default :func:`~polaronflow.settings.load_settings`.
    force
        Submit even when the same campaign is already on the LaunchPad.
    **option_kwargs
        Campaign options as keywords.

    Returns
    -------
    SubmitResult
        Workflow name and FireWorks ids.
    """
    from polaronflow.workflows.campaign.fingerprint import campaign_fingerprint
    from polaronflow.workflows.campaign.maker import campaign_flow
    from polaronflow.workflows.campaign.options import make_options
    from polaronflow.workflows.campaign.plan import plan_campaign

    s = _settings(settings)
    if options is None:
        options = make_options(**option_kwargs)
    if options.walltime is None and s.walltime is not None:
        options = options.model_copy(update={"walltime": s.walltime})
    if options.vasp_cmd is None and s.vasp_cmd is not None:
        options = options.model_copy(update={"vasp_cmd": s.vasp_cmd})
    plan = plan_campaign(options)
    fingerprint = campaign_fingerprint(options, plan)
    return submit_flow(campaign_flow(plan), s, campaign_id=fingerprint, force=force)


def run_flow_locally(
    flow: Flow,
    settings: PolaronflowSettings | None = None,
    root_dir: str | Path | None = None,
    store: JobStore | None = None,
) -> dict[str, Any]:
    """Run a Flow here and now with jobflow's ``run_locally`` (VASP must be runnable).

    Parameters
    ----------
    flow
        The Flow.
    settings
        polaronflow settings; default :func:`~polaronflow.settings.load_settings`.
    root_dir
        Where job folders are made; default ``project_dir/runs``.
    store
        JobStore; default the configured one (the embedded montydb store).

    Returns
    -------
    dict
        jobflow's responses by job uuid and index.
    """
    from jobflow import run_locally

    s = _settings(settings)
    store = store if store is not None else (_jobstore(s) or embedded_jobstore(s.project_dir))
    root = Path(root_dir) if root_dir is not None else s.project_dir / RUNS_DIR
    root.mkdir(parents=True, exist_ok=True)
    return run_locally(flow, store=store, create_folders=True, root_dir=root, log=False)
