"""User settings: where the embedded LaunchPad/JobStore live, how jobs run.

Values come from, highest priority first: keyword arguments to :func:`load_settings`,
``POLARONFLOW_*`` environment variables (e.g. ``POLARONFLOW_PROJECT_DIR``), the YAML file
``~/.polaronflow.yaml`` (or the file named by ``POLARONFLOW_CONFIG_FILE``), the defaults below.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from polaronflow.errors import ConfigError

#: The settings file read when ``POLARONFLOW_CONFIG_FILE`` is not set.
DEFAULT_CONFIG_FILE = Path("~/.polaronflow.yaml")

# The YAML file of the settings being built; a context variable because pydantic-settings
# asks for sources on the class, not on the instance.
_YAML_FILE: ContextVar[Path | None] = ContextVar("_YAML_FILE", default=None)


class PolaronflowSettings(BaseSettings):
    """polaronflow's settings (see the module docstring for where they come from)."""

    model_config = SettingsConfigDict(env_prefix="POLARONFLOW_", extra="forbid")

    project_dir: Path = Field(
        default=Path("~/.polaronflow/project"),
        description="Folder of the embedded (server-free) LaunchPad file, JobStore database, "
        "lock file and local run folders.",
    )
    launchpad_file: Path | None = Field(
        default=None,
        description="A FireWorks my_launchpad.yaml for a MongoDB LaunchPad; None uses the "
        "embedded LaunchPad in project_dir.",
    )
    jobstore_file: Path | None = Field(
        default=None,
        description="A jobflow.yaml whose JOB_STORE is used with a MongoDB LaunchPad; None uses "
        "the embedded montydb JobStore in project_dir.",
    )
    lock_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds to wait for the embedded store's file lock before giving up (s).",
    )
    walltime: int | None = Field(
        default=None,
        gt=0,
        description="Job wall time (s); when set, custodian's WalltimeHandler stops VASP "
        "cleanly before the queue kills it.",
    )
    vasp_cmd: str | None = Field(
        default=None,
        description="VASP command for custodian; None uses atomate2's VASP_CMD setting.",
    )
    potcar_spec: bool | None = Field(
        default=None,
        description="Write POTCAR.spec instead of POTCAR in job folders; None: only when "
        "PMG_VASP_PSP_DIR is not configured.",
    )

    runner: Literal["fireworks", "jobflow-remote"] = Field(
        default="fireworks",
        description="What runs the campaign's jobs: FireWorks (LaunchPad, `polaronflow launch`, "
        "rlaunch/qlaunch) or jobflow-remote (`jf runner start`; the `remote` extra).",
    )
    jfremote_project: str | None = Field(
        default=None,
        description="jobflow-remote project name (runner jobflow-remote); None: jobflow-remote's "
        "current project.",
    )
    jfremote_worker: str | None = Field(
        default=None,
        description="jobflow-remote worker the campaign is submitted to; None: the project's "
        "first worker.",
    )

    @field_validator("project_dir", "launchpad_file", "jobstore_file", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(os.path.expandvars(str(value))).expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_file = _YAML_FILE.get()
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


def _fireworks_convention(settings: PolaronflowSettings) -> PolaronflowSettings:
    """Honour FireWorks' and jobflow's own variables when polaronflow names no LaunchPad.

    With ``FW_CONFIG_FILE`` exported (FireWorks' convention) its ``LAUNCHPAD_LOC`` (or
    ``CONFIG_FILE_DIR/my_launchpad.yaml``) is the LaunchPad, and ``JOBFLOW_CONFIG_FILE`` the
    JobStore file: polaronflow then uses the same MongoDB as ``rlaunch``/``qlaunch`` instead of
    silently falling back to its embedded store. An ``FW_config.yaml`` of the embedded store
    (``MONGOMOCK_SERVERSTORE_FILE``) is not a MongoDB LaunchPad and is ignored.
    """
    fw_config = os.environ.get("FW_CONFIG_FILE")
    if settings.launchpad_file is not None or not fw_config:
        return settings
    import yaml

    path = Path(fw_config).expanduser()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"FW_CONFIG_FILE {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("MONGOMOCK_SERVERSTORE_FILE"):
        return settings
    loc = data.get("LAUNCHPAD_LOC") or (
        str(Path(str(data["CONFIG_FILE_DIR"])) / "my_launchpad.yaml")
        if data.get("CONFIG_FILE_DIR")
        else str(path.parent / "my_launchpad.yaml")
    )
    if not Path(loc).expanduser().is_file():
        return settings
    update: dict[str, Any] = {"launchpad_file": Path(loc).expanduser()}
    jobflow_file = os.environ.get("JOBFLOW_CONFIG_FILE")
    if settings.jobstore_file is None and jobflow_file:
        update["jobstore_file"] = Path(jobflow_file).expanduser()
    return settings.model_copy(update=update)


def config_file_path() -> Path:
    """Return the settings file that :func:`load_settings` reads (it need not exist)."""
    return Path(os.environ.get("POLARONFLOW_CONFIG_FILE", str(DEFAULT_CONFIG_FILE))).expanduser()


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> PolaronflowSettings:
    """Load the settings.

    Parameters
    ----------
    config_file
        A YAML settings file; default :func:`config_file_path`. A missing default file is
        fine, a missing explicit file is an error.
    **overrides
        Field values that win over every other source.

    Returns
    -------
    PolaronflowSettings
        The validated settings.

    Raises
    ------
    ConfigError
        When the file cannot be read or a value is invalid.
    """
    explicit = config_file is not None or "POLARONFLOW_CONFIG_FILE" in os.environ
    path = Path(config_file).expanduser() if config_file is not None else config_file_path()
    if not path.exists():
        if explicit:
            raise ConfigError(f"settings file {path} does not exist")
        path = None
    elif path.is_file():
        import yaml

        try:
            content = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"settings file {path} is not readable YAML: {exc}") from exc
        if content is not None and not isinstance(content, dict):
            raise ConfigError(f"settings file {path} must hold a mapping of setting: value")
    token = _YAML_FILE.set(path)
    try:
        settings = PolaronflowSettings(**{k: v for k, v in overrides.items() if v is not None})
        return _fireworks_convention(settings)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(
            f"invalid polaronflow settings ({path or 'environment'}): {problems}"
        ) from exc
    finally:
        _YAML_FILE.reset(token)
