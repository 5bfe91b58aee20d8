"""Configuration templates for FireWorks, jobflow and atomate2 (``polaronflow init``).

The templates live in ``polaronflow/templates/config/`` with ``$name`` placeholders
(:class:`string.Template`). :func:`write_config_templates` fills them in and writes them into
one folder.

``mongodb=True`` (a cluster): ``my_launchpad.yaml``, ``FW_config.yaml``, ``my_fworker.yaml``,
``my_qadapter.yaml`` (SLURM or PBS), ``jobflow.yaml``, ``atomate2.yaml`` (``VASP_CMD``) and
``polaronflow.yaml``; the queue adapter's log folder is created; the two files that will hold
credentials are written 0600.

``runner="jobflow-remote"`` (MongoDB, jobflow-remote instead of FireWorks): ``jobflow.yaml``,
``atomate2.yaml``, ``polaronflow.yaml`` (``runner: jobflow-remote``) and the jobflow-remote
project file ``<projects folder>/<project>.yaml`` (``~/.jfremote`` unless jobflow-remote is
told otherwise) with a local worker, the queue store and the JobStore; both files that will
hold credentials are written 0600.

``mongodb=False`` (a workstation, the embedded store): only ``jobflow.yaml``, ``atomate2.yaml``
and ``polaronflow.yaml``. No FireWorks configuration is written for the embedded store on
purpose: any FireWorks process on it (even a read-only ``lpad get_wflows``) rewrites the
store's file when it exits and loses what polaronflow saved meanwhile; ``polaronflow launch``
runs its jobs instead.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from polaronflow.errors import ConfigError, InputError
from polaronflow.fileio import write_text_atomic

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "config"
QUEUES = ("slurm", "pbs")
RUNNERS = ("fireworks", "jobflow-remote")


#: Files that hold (or will hold, once edited) database credentials: written 0600.
SECRET_FILES = ("my_launchpad.yaml", "jobflow.yaml")
#: The jobflow-remote project file's template (written into jobflow-remote's projects folder).
JFREMOTE_TEMPLATE = "jfremote_project.yaml"


def _files(mongodb: bool, queue: str, runner: str = "fireworks") -> dict[str, str]:
    if runner == "jobflow-remote":
        return {
            "jobflow.yaml": "jobflow_mongodb.yaml",
            "atomate2.yaml": "atomate2.yaml",
            "polaronflow.yaml": "polaronflow_jfremote.yaml",
        }
    if not mongodb:
        return {
            "jobflow.yaml": "jobflow_embedded.yaml",
            "atomate2.yaml": "atomate2.yaml",
            "polaronflow.yaml": "polaronflow_embedded.yaml",
        }
    return {
        "my_launchpad.yaml": "my_launchpad_mongodb.yaml",
        "FW_config.yaml": "FW_config_mongodb.yaml",
        "my_fworker.yaml": "my_fworker.yaml",
        "my_qadapter.yaml": f"my_qadapter_{queue}.yaml",
        "jobflow.yaml": "jobflow_mongodb.yaml",
        "atomate2.yaml": "atomate2.yaml",
        "polaronflow.yaml": "polaronflow_mongodb.yaml",
    }


def exports(out: str | Path, mongodb: bool, jf_project: str | None = None) -> list[str]:
    """The ``export`` lines a shell needs for the files written into ``out``.

    ``jf_project``: the jobflow-remote project (runner jobflow-remote), exported as
    ``JFREMOTE_PROJECT`` so that ``jf`` picks it when the projects folder holds several.
    """
    d = Path(out).expanduser().resolve()
    lines = [
        f"export POLARONFLOW_CONFIG_FILE={d / 'polaronflow.yaml'}",
        f"export ATOMATE2_CONFIG_FILE={d / 'atomate2.yaml'}",
        f"export JOBFLOW_CONFIG_FILE={d / 'jobflow.yaml'}",
    ]
    if jf_project is not None:
        lines.append(f"export JFREMOTE_PROJECT={jf_project}")
    elif mongodb:
        lines.insert(0, f"export FW_CONFIG_FILE={d / 'FW_config.yaml'}")
    return lines


#: jobflow-remote refuses to start its runner when the supervisord socket path
#: (``<daemon_dir>/s.sock``) is longer than this (UNIX sockets allow ~107 bytes).
_JF_SOCKET_MAX = 97


def _jfremote_daemon_line(jf_project: str) -> str:
    """``daemon_dir: …`` for the project file when jobflow-remote's default (``<projects
    folder>/<project>/daemon``) would give a socket path it refuses; else a comment."""
    import os
    import tempfile

    default = jfremote_projects_folder() / jf_project / "daemon" / "s.sock"
    if len(str(default)) <= _JF_SOCKET_MAX:
        return "# daemon_dir: default, <projects folder>/<project>/daemon"
    short = Path(tempfile.gettempdir()) / f"jfremote-{os.getuid()}-{jf_project}"
    if len(str(short / "s.sock")) > _JF_SOCKET_MAX:
        raise InputError(
            f"jobflow-remote's runner socket {default} is longer than {_JF_SOCKET_MAX} "
            "characters and so would be one in the temporary folder: use a shorter --jf-project"
        )
    return (
        f"# the default daemon folder would give a socket path over {_JF_SOCKET_MAX} "
        "characters, which jobflow-remote refuses\n"
        f"daemon_dir: {short}"
    )


def jfremote_projects_folder() -> Path:
    """jobflow-remote's projects folder: its ``projects_folder`` setting (``JFREMOTE_*``
    variables or ``~/.jfremote.yaml``), ``~/.jfremote`` by default."""
    try:
        from jobflow_remote import SETTINGS
    except ImportError:  # not installed (yet): jobflow-remote's own defaults
        import os

        return Path(os.environ.get("JFREMOTE_PROJECTS_FOLDER", "~/.jfremote")).expanduser()
    return Path(SETTINGS.projects_folder).expanduser()


def write_config_templates(
    out: str | Path,
    project_dir: str | Path,
    mongodb: bool = False,
    queue: str = "slurm",
    vasp_cmd: str = "srun vasp_std",
    vasp_gamma_cmd: str = "srun vasp_gam",
    worker_name: str = "polaronflow-worker",
    mongo_host: str = "localhost",
    mongo_port: int = 27017,
    mongo_db: str = "polaronflow",
    mongo_user: str = "null",
    mongo_password: str = "null",
    force: bool = False,
    create_store: bool = True,
    runner: str = "fireworks",
    jf_project: str = "polaronflow",
    jf_worker: str = "local",
) -> list[Path]:
    """Write filled-in configuration files into ``out``.

    Parameters
    ----------
    out
        Folder to write into (created).
    project_dir
        polaronflow's project folder (embedded LaunchPad file, JobStore, run folders).
    mongodb
        Configure a MongoDB server instead of the embedded store.
    queue
        ``"slurm"`` or ``"pbs"``.
    vasp_cmd, vasp_gamma_cmd
        VASP commands for atomate2 (standard and Γ-only builds).
    worker_name
        FireWorks worker name.
    mongo_host, mongo_port, mongo_db, mongo_user, mongo_password
        MongoDB connection (``mongodb=True``); ``null`` means none.
    force
        Overwrite existing files.
    create_store
        For the embedded flavour, also create the project folder and an initialised
        ``launchpad.json`` (FireWorks' own commands cannot start from a missing file).
    runner
        ``"fireworks"`` or ``"jobflow-remote"`` (MongoDB always; ``mongodb`` and ``queue`` are
        then not used).
    jf_project, jf_worker
        jobflow-remote project and local worker names (runner jobflow-remote).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    InputError
        Unknown queue, or files exist and ``force`` is false.
    """
    queue = queue.lower()
    if queue not in QUEUES:
        raise InputError(f"queue {queue!r} is not supported: use {' or '.join(QUEUES)}")
    if runner not in RUNNERS:
        raise InputError(f"runner {runner!r} is not supported: use {' or '.join(RUNNERS)}")
    jfremote = runner == "jobflow-remote"
    out = Path(out).expanduser()
    targets = {out / name: source for name, source in _files(mongodb, queue, runner).items()}
    secret = {out / name for name in SECRET_FILES} if mongodb or jfremote else set()
    if jfremote:
        import re

        for what, name in (("--jf-project", jf_project), ("--jf-worker", jf_worker)):
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise InputError(f"{what} {name!r}: use letters, digits, '_', '-' and '.'")
        project_file = jfremote_projects_folder() / f"{jf_project}.yaml"
        targets[project_file] = JFREMOTE_TEMPLATE
        secret.add(project_file)
    existing = [str(p) if p.parent != out else p.name for p in targets if p.exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already exist in {out} (use --force to overwrite)")
    import shlex
    import sys

    values = {
        "config_dir": str(out.resolve()),
        "project_dir": str(Path(project_dir).expanduser().resolve()),
        "vasp_cmd": vasp_cmd,
        "vasp_gamma_cmd": vasp_gamma_cmd,
        "worker_name": worker_name,
        "mongo_host": mongo_host,
        "mongo_port": str(mongo_port),
        "mongo_db": mongo_db,
        "mongo_user": mongo_user,
        "mongo_password": mongo_password,
        "jf_project": jf_project,
        "jf_worker": jf_worker,
        "projects_folder": str(jfremote_projects_folder()) if jfremote else "",
        "daemon_dir": _jfremote_daemon_line(jf_project) if jfremote else "",
        # the folder of this Python's scripts (polaronflow, jf): first on the job shell's PATH
        "bin_dir": shlex.quote(str(Path(sys.executable).parent)),
    }
    rendered: dict[Path, str] = {}
    for target, source in targets.items():
        try:
            text = (TEMPLATE_DIR / source).read_text()
        except OSError as exc:  # pragma: no cover - broken installation
            raise ConfigError(f"template {source} is missing from the installation") from exc
        rendered[target] = Template(text).substitute(values)
    for folder in sorted({p.parent for p in targets}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"cannot create {folder}: {exc.strerror}") from exc
    written = []
    for path, text in rendered.items():
        write_text_atomic(path, text, mode=0o600 if path in secret else None)
        written.append(path)
    if jfremote:
        return written
    if mongodb:
        # my_qadapter.yaml's logdir: FireWorks' qlaunch does not create it
        logdir = Path(values["project_dir"]) / "queue_logs"
        try:
            logdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"cannot create the queue log folder {logdir}: {exc.strerror}"
            ) from exc
    if create_store and not mongodb:
        from polaronflow.workflows.runtime.submit import embedded_launchpad

        with embedded_launchpad(values["project_dir"]):
            pass
    return written
