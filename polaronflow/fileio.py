"""Small file-writing helpers shared by the commands: nothing is ever left half-written."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from polaronflow.errors import InputError


@contextmanager
def staged_directory(target: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Write into a temporary sibling folder, then move it onto ``target`` in one step.

    If the block raises, ``target`` is untouched (an existing folder keeps its old content).
    With ``overwrite=False`` a non-empty existing ``target`` is an :class:`InputError`.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise InputError(f"output {target} exists and is not a folder")
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise InputError(f"output folder {target} is not empty (use --force to replace it)")
    parent = target.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the parent folder of {target}: {exc.strerror}") from exc
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    stage.chmod(default_mode(folder=True))
    try:
        yield stage
        if target.exists():
            backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            backup.rmdir()
            os.replace(target, backup)
            os.replace(stage, target)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(stage, target)
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(folder: bool = False) -> int:
    """Permissions of a new file (0644) or folder (0755) under the process's umask.

    ``tempfile.mkstemp``/``mkdtemp`` create 0600/0700, which group members on a cluster cannot
    read; outputs made through them are given these instead.
    """
    return (0o777 if folder else 0o666) & ~_umask()


def write_text_atomic(path: str | Path, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` via a synced temporary file and an atomic rename.

    Readers see either the old or the new content, never a partial file. ``mode`` defaults to
    0644 under the umask (0600 only for files with credentials: pass ``mode=0o600``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, default_mode() if mode is None else mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and an atomic rename."""
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")
