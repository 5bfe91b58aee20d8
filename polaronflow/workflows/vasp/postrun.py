"""What a polaronflow VASP job does after VASP ends: a lean task document, a summary, gzip.

atomate2's ``BaseVaspMaker.make`` parses the finished run with emmet's
``TaskDoc.from_directory``, i.e. pymatgen's ``Vasprun``, which builds the XML tree of the whole
vasprun.xml. For a 257-atom ``LORBIT = 11`` static that file is ~780 MB, almost all of it the
site-projected DOS (``<partial>``) and the projected eigenvalues (``<projected>``), and the parse
takes tens of seconds and ~2.7 GB while the job still holds its nodes. Of these blocks only
emmet's ``dos_properties`` (moments of the element-projected DOS) reaches atomate2's default
task document (emmet parses no DOS and no band structure by default, and pymatgen skips the
projections). :func:`lean_task_document` hands emmet a *view* of the run folder whose
vasprun.xml lacks those two blocks: the same task document, without ``dos_properties``, at a
fraction of the cost. When ``task_document_kwargs`` ask for the DOS, a band structure or the
projections, or say ``polaronflow_lean=False``, the full file is parsed as before.

:func:`run_summary` adds what polaronflow's analysis finds in the run (polarons, band edges,
in-gap levels: :class:`polaronflow.analysis.models.RunReport`), read by the fast readers, as
``additional_json["polaronflow_summary"]``. :func:`gzip_outputs` compresses the same files as
atomate2 (its ``gzip_files`` and file list) with ISA-L instead of zlib level 6.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from atomate2.utils.file_client import FileClient

if TYPE_CHECKING:
    from atomate2.vasp.jobs.base import BaseVaspMaker
    from emmet.core.tasks import TaskDoc
    from jobflow import Response
    from pymatgen.core import Structure

logger = logging.getLogger(__name__)

#: Key of the fast readers' summary in the task document's ``additional_json``.
SUMMARY_KEY = "polaronflow_summary"
#: ``task_document_kwargs`` key: False parses the full vasprun.xml as atomate2 does.
LEAN_KEY = "polaronflow_lean"

#: ISA-L compression level (0-3; 2 is ISA-L's default: about zlib level 1-3 in size).
GZIP_LEVEL = 2

_TAIL_WINDOW = 8 << 20


def run_vasp_job(
    maker: BaseVaspMaker, structure: Structure, prev_dir: str | Path | None = None
) -> Response:
    """atomate2's ``BaseVaspMaker.make`` body, with :func:`finish_vasp_job` after VASP.

    Parameters
    ----------
    maker
        The VASP maker (its input set, copy, run and task-document settings are used).
    structure
        The input structure.
    prev_dir
        A previous run folder to copy outputs from.

    Returns
    -------
    jobflow.Response
        The task document as output, custodian's record as stored data.
    """
    # The names are looked up in atomate2's job module, as its own make does, so that what
    # patches them there (atomate2's and polaronflow's mock VASP) patches this job too.
    import atomate2.vasp.jobs.base as base

    from_prev = prev_dir is not None
    if prev_dir is not None:
        base.copy_vasp_outputs(prev_dir, **maker.copy_vasp_kwargs)
    maker.write_input_set_kwargs.setdefault("from_prev", from_prev)
    base.write_vasp_input_set(structure, maker.input_set_generator, **maker.write_input_set_kwargs)
    for filename, data in maker.write_additional_data.items():
        base.dumpfn(data, filename.replace(":", "."))
    base.run_vasp(**maker.run_vasp_kwargs)
    return finish_vasp_job(maker, Path.cwd())


def finish_vasp_job(maker: BaseVaspMaker, run_dir: str | Path) -> Response:
    """The post-run part of a VASP job: task document, summary, stop decision, gzip.

    Parameters
    ----------
    maker
        The job's maker (``name``, ``task_document_kwargs``, ``stop_children_kwargs``).
    run_dir
        The finished run folder.

    Returns
    -------
    jobflow.Response
        As atomate2's ``BaseVaspMaker.make`` returns it.
    """
    import atomate2.vasp.jobs.base as base
    from atomate2 import SETTINGS
    from jobflow import Response

    run_dir = Path(run_dir)
    task_doc = lean_task_document(run_dir, **maker.task_document_kwargs)
    task_doc.task_label = maker.name
    task_doc.additional_json[SUMMARY_KEY] = run_summary(run_dir)
    stop_children = base.should_stop_children(task_doc, **maker.stop_children_kwargs)
    gzip_outputs(run_dir, SETTINGS.VASP_ZIP_FILES)
    return Response(
        stop_children=stop_children,
        stored_data={"custodian": task_doc.custodian},
        output=task_doc,
    )


def _needs_full_vasprun(kwargs: dict[str, Any], lean: bool = True) -> bool:
    """True when the task document is asked for data that lives in the big blocks."""
    vasprun_kwargs = kwargs.get("vasprun_kwargs") or {}
    return not lean or bool(
        kwargs.get("parse_dos")
        or kwargs.get("parse_bandstructure")
        or vasprun_kwargs.get("parse_projected_eigen")
        or kwargs.get("is_neb")
    )


def lean_task_document(run_dir: str | Path, **kwargs: Any) -> TaskDoc:
    """atomate2's task document of ``run_dir``, parsed from a vasprun.xml without projections.

    The run folder is mirrored into a temporary folder (symbolic links), except each
    vasprun.xml, which is replaced by a copy without ``<partial>`` and ``<projected>`` (see
    :func:`slim_vasprun`); atomate2's ``get_vasp_task_document`` parses that folder and the
    folder names in the document are set back to ``run_dir``.

    Parameters
    ----------
    run_dir
        The finished run folder.
    **kwargs
        ``task_document_kwargs`` for atomate2's ``get_vasp_task_document``. When they ask for
        the DOS, a band structure or projected eigenvalues, or say ``polaronflow_lean=False``,
        the full files are parsed.

    Returns
    -------
    emmet.core.tasks.TaskDoc
        The document atomate2 builds from the full files, except
        ``calcs_reversed[].output.dos_properties`` (emmet's moments of the element-projected
        DOS: band centre, width, skewness, ... per element and orbital), which is empty.
    """
    from atomate2.utils.path import get_uri
    from atomate2.vasp.jobs.base import get_vasp_task_document

    run_dir = Path(run_dir).resolve()
    kwargs = dict(kwargs)
    lean = bool(kwargs.pop(LEAN_KEY, True))
    if _needs_full_vasprun(kwargs, lean):
        return get_vasp_task_document(run_dir, **kwargs)
    with tempfile.TemporaryDirectory(prefix="polaronflow-taskdoc-") as tmp:
        view = Path(tmp).resolve()
        for entry in run_dir.iterdir():
            target = view / entry.name
            if entry.is_file() and _is_vasprun(entry.name):
                name = entry.name[:-3] if entry.name.endswith(".gz") else entry.name
                if slim_vasprun(entry, view / name):
                    shutil.copystat(entry, view / name)  # completed_at is the file's mtime
                    continue
            target.symlink_to(entry)
        doc = get_vasp_task_document(view, **kwargs)
    doc.dir_name = get_uri(run_dir)
    for calc in doc.calcs_reversed or []:
        if calc.dir_name == str(view):
            calc.dir_name = str(run_dir)
    return doc


def _is_vasprun(name: str) -> bool:
    """vasprun.xml, vasprun.xml.gz, vasprun.xml.relax1(.gz), vasprun.relax1.xml (emmet's names)."""
    low = name.lower()
    return low.startswith("vasprun") and ".xml" in low and not low.endswith((".bz2", ".xz"))


def slim_vasprun(src: str | Path, dest: str | Path) -> bool:
    """Write ``src`` (plain or gzipped) to ``dest`` (plain) without the projection blocks.

    ``<partial>`` (the site-projected DOS) is dropped whole; ``<projected>`` keeps only the
    eigenvalues and occupations VASP repeats at its start (pymatgen reads that later copy).
    A plain file is memory-mapped and the dropped blocks are never read; a gzipped file is
    inflated once with the blocks dropped as they stream past (the fast readers' code).

    Parameters
    ----------
    src
        vasprun.xml or vasprun.xml.gz.
    dest
        The file to write.

    Returns
    -------
    bool
        False (and nothing written) when the file does not have the expected layout: the
        caller then uses the full file.
    """
    from polaronflow.analysis import _bytesio, _vasprun
    from polaronflow.analysis.readers import _BIG_BLOCKS, _PARTIAL_BLOCK

    src, dest = Path(src), Path(dest)
    try:
        if _bytesio.is_gzip(src):
            data, complete = _bytesio.gunzip(src, _BIG_BLOCKS + _PARTIAL_BLOCK)
            if not complete:
                return False
            # The elision keeps the tags; an empty <partial> would make pymatgen drop the DOS.
            data = re.sub(rb"<partial>\s*</partial>\s*", b"", data, count=1)
            dest.write_bytes(data)
            return True
        with open(src, "rb") as fh:
            if fh.seek(0, 2) == 0:
                return False
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            spans = _drop_spans(buf, _vasprun)
            if spans is None:
                return False
            with open(dest, "wb") as out:
                pos = 0
                for start, end, keep in spans:
                    out.write(buf[pos:start])
                    out.write(keep)
                    pos = end
                out.write(buf[pos:])
        finally:
            buf.close()
    except Exception as exc:  # any surprise: parse the full file, as atomate2 does
        logger.warning("%s: no slim copy (%s); parsing the full file", src, exc)
        dest.unlink(missing_ok=True)
        return False
    return True


def _drop_spans(buf: mmap.mmap, vasprun: Any) -> list[tuple[int, int, bytes]] | None:
    """(start, end, replacement) of the blocks to drop, or None for an unexpected layout."""
    first = buf.find(b"<calculation>")
    if first < 0:
        return None
    head = bytes(buf[:first])
    info = vasprun.section(head, b"<atominfo>", b"</atominfo>")
    if not info:
        return None
    species, _ = vasprun.parse_atominfo(info)
    lay = vasprun.locate(buf, len(species))
    if not lay.complete or lay.truncated_in:
        return None
    spans: list[tuple[int, int, bytes]] = []
    after = first
    if lay.partial is not None:
        start, end = lay.partial
        spans.append((start, end, b""))
        after = end
    elif lay.dos is not None and lay.dos[1] > 0:
        after = lay.dos[1]
    proj = buf.find(b"<projected>", after, lay.finalpos[0] if lay.finalpos else len(buf))
    if proj >= 0:
        body = proj + len(b"<projected>")
        keep = b"<projected>"
        if lay.proj_eigen is not None and lay.proj_eigen[0] >= body:
            e1 = lay.proj_eigen[1]
            keep += bytes(buf[body:e1])
            body = e1
        close = buf.rfind(b"</projected>", max(body, len(buf) - _TAIL_WINDOW))
        if close < 0:
            close = buf.find(b"</projected>", body)
        if close < 0:
            return None
        spans.append((proj, close, keep + b"\n"))
    if any(b > a for (_, b, _), (a, _, _) in itertools.pairwise(spans)):
        return None
    return spans


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """What polaronflow's analysis finds in the run, as JSON (the fast readers, no PDOS).

    Parameters
    ----------
    run_dir
        The finished run folder.

    Returns
    -------
    dict
        :class:`polaronflow.analysis.models.RunReport` as JSON (polarons with their sites
        and moments, band edges, in-gap levels, energy, lattice), or ``{"error": ...}`` when
        the run cannot be read: the summary never fails the job.
    """
    from polaronflow.analysis.readers import read_run
    from polaronflow.analysis.report import AnalysisOptions, analyze_run

    try:
        run = read_run(run_dir, strict=False)
        report = analyze_run(run, AnalysisOptions(partial=True))
    except Exception as exc:  # the task document must not depend on the analysis
        logger.warning("%s: no polaronflow summary (%s)", run_dir, exc)
        return {"error": f"{type(exc).__name__}: {exc}"}
    return report.model_dump(mode="json")


class _IsalFileClient(FileClient):
    """atomate2's ``FileClient`` whose local ``gzip`` compresses with ISA-L (igzip)."""

    def gzip(
        self,
        path: str | Path,
        host: str | None = None,
        compresslevel: int = 6,
        force: bool | str = False,
    ) -> None:
        """Gzip ``path`` as atomate2 does (same name, stat, removal), ISA-L level 2."""
        try:
            from isal import igzip
        except ImportError:  # pragma: no cover - isal is a dependency
            igzip = None
        path = Path(self.abspath(path, host=host))
        path_gz = path.parent / f"{path.name}.gz"
        if (
            host is not None
            or igzip is None
            or path.name.lower().endswith("gz")
            or path.is_dir()
            or (path_gz.exists() and force not in (True, "force"))
        ):
            super().gzip(path, host=host, compresslevel=compresslevel, force=force)
            return
        with open(path, "rb") as f_in, igzip.open(path_gz, "wb", compresslevel=GZIP_LEVEL) as out:
            shutil.copyfileobj(f_in, out, 1 << 20)
        shutil.copystat(path, path_gz)
        os.unlink(path)


def gzip_outputs(run_dir: str | Path, setting: bool | str = "atomate") -> None:
    """Gzip a finished run folder as atomate2's ``gzip_output_folder``, with ISA-L.

    Parameters
    ----------
    run_dir
        The run folder.
    setting
        atomate2's ``VASP_ZIP_FILES``: "atomate" (its list of VASP files), True (every
        file) or False (none).
    """
    from atomate2.common.files import gzip_files
    from atomate2.vasp.jobs.base import _FILES_TO_ZIP

    client = _IsalFileClient()
    if setting == "atomate":
        gzip_files(
            directory=run_dir,
            include_files=_FILES_TO_ZIP,
            allow_missing=True,
            force=True,
            file_client=client,
        )
    elif setting:
        gzip_files(directory=run_dir, force=True, file_client=client)
