"""Write every VASP input folder of a campaign without submitting (``polaronflow inputs``).

Layout of ``OUT`` (one folder per VASP job, named exactly as the job)::

    OUT/plan.json                  every job in dependency order: kind, parents, atoms, mesh, note
    OUT/wo3-unit-relax/            INCAR KPOINTS POSCAR POTCAR.spec (or POTCAR) polaronflow.json
    OUT/wo3-supercell-relax/ ...
    OUT/mg-ramp-u9/ ... OUT/mg-static/
    OUT/ref-MgO-relax/  OUT/ref-MgO-kconv-k5x5x5/   (first mesh of the convergence loop)

Structure-only jobs (``wo3-supercell``, ``*-seed``) get no folder; their facts (seed manifest)
are in ``plan.json``. Later ramp steps and statics are written from the seeded (or unrelaxed)
start structure — at run time they start from their parent's CONTCAR, moments and WAVECAR;
``polaronflow.json`` says so in ``dry_run_note``. Everything is written to a temporary folder
first and moved into place, so ``OUT`` is never half-written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from polaronflow.errors import ConfigError

if TYPE_CHECKING:
    from polaronflow.workflows.campaign.plan import CampaignPlan

PLAN_FILE = "plan.json"


class PlanRow(BaseModel):
    """One line of the printed plan."""

    name: str = Field(description="Job name.")
    kind: str = Field(
        description="vasp, kconv (first static of a convergence loop), supercell or seed (python)."
    )
    role: str = Field(description="The job's role (polaronflow.naming.Role).")
    parents: list[str] = Field(description="Jobs this one waits for.")
    folder: str | None = Field(description="Input folder written (relative to OUT), or None.")
    n_atoms: int = Field(description="Atoms in the start structure.")
    formula: str = Field(description="Reduced-free formula of the start structure.")
    kpoints: str | None = Field(description="Γ-centred mesh, e.g. '2x2x2' (VASP jobs).")
    u: float | None = Field(default=None, description="U on W of the job (eV), if any.")
    note: str = Field(default="", description="What differs at run time.")


def potcar_available() -> bool:
    """Whether pymatgen can write real POTCARs (``PMG_VASP_PSP_DIR`` is configured)."""
    if os.environ.get("PMG_VASP_PSP_DIR"):
        return True
    try:
        from pymatgen.core import SETTINGS
    except ImportError:  # pragma: no cover
        return False
    return bool(SETTINGS.get("PMG_VASP_PSP_DIR"))


def _write_vasp_folder(folder: Path, spec, structure, potcar_spec: bool, extra: dict) -> str:
    try:
        vis = spec.generator.get_input_set(structure, potcar_spec=potcar_spec)
    except (OSError, RuntimeError, ValueError) as exc:
        if not potcar_spec:
            raise ConfigError(
                f"cannot write the POTCAR for {spec.name}: {exc} (check PMG_VASP_PSP_DIR or "
                "write POTCAR.spec with --potcar-spec)"
            ) from exc
        raise
    vis.write_input(str(folder), make_dir_if_not_present=True)
    record = dict(spec.record)
    record.update(extra)
    record["copy_wavecar"] = spec.copy_wavecar
    (folder / "polaronflow.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    mesh = vis["KPOINTS"].kpts[0]
    return "x".join(str(int(n)) for n in mesh)


def write_inputs(
    plan: CampaignPlan,
    out: str | Path,
    potcar_spec: bool | None = None,
    force: bool = False,
) -> list[PlanRow]:
    """Write the input folders of ``plan`` into ``out`` (staged, then moved into place).

    Parameters
    ----------
    plan
        From :func:`~polaronflow.workflows.campaign.plan.plan_campaign`.
    out
        The output folder.
    potcar_spec
        Write POTCAR.spec (symbols) instead of POTCAR; None: only when no POTCAR library is
        configured (``PMG_VASP_PSP_DIR``).
    force
        Replace a non-empty ``out``.

    Returns
    -------
    list of PlanRow
        One row per planned job, in dependency order.

    Raises
    ------
    InputError
        ``out`` is a file, or non-empty without ``force``.
    ConfigError
        POTCARs requested but not available.
    """
    from polaronflow.fileio import staged_directory
    from polaronflow.workflows.vasp.sets import shared_structure_work

    if potcar_spec is None:
        potcar_spec = not potcar_available()
    rows: list[PlanRow] = []
    entries: list[dict[str, Any]] = []
    # The ramp steps and static of a system share one start structure (as do the pristine
    # supercell's relax and static): its POSCAR and default moments are built once. Nothing
    # here changes a structure or a written input set, as shared_structure_work requires.
    with staged_directory(out, overwrite=force) as stage, shared_structure_work():
        for job in plan.jobs():
            folder: str | None = None
            mesh: str | None = None
            u = None
            kind = "kconv" if job.loop else ("vasp" if job.spec is not None else str(job.role))
            # A loop's static is listed under the loop's name, as before the typed plan.
            name = job.loop or job.name
            if job.spec is not None:
                folder = job.name
                extra = {"dry_run": True, "dry_run_note": job.note, "parents": job.parents}
                if job.loop:
                    extra["loop"] = job.loop
                mesh = _write_vasp_folder(
                    stage / folder, job.spec, job.structure, potcar_spec, extra
                )
                u = job.spec.record.get("u") if not job.loop else None
            row = PlanRow(
                name=name,
                kind=kind,
                role=str(job.role),
                parents=list(job.parents),
                folder=folder,
                n_atoms=len(job.structure),
                formula=job.structure.composition.formula.replace(" ", ""),
                kpoints=mesh,
                u=u,
                note=job.note,
            )
            rows.append(row)
            entry = row.model_dump()
            if job.manifest is not None:
                entry["manifest"] = job.manifest
            entries.append(entry)
        (stage / PLAN_FILE).write_text(
            json.dumps(
                {
                    "generator": "polaronflow",
                    "potcar_spec": potcar_spec,
                    "jobs": entries,
                    "searches": [
                        {
                            "label": s.label,
                            "keep": s.keep,
                            "summary": s.summary,
                            "candidates": [
                                {
                                    "number": c.number,
                                    "screen": c.screen.name,
                                    "full": c.full.name,
                                    **c.candidate.model_dump(mode="json"),
                                }
                                for c in s.candidates
                            ],
                        }
                        for s in plan.searches
                    ],
                },
                indent=2,
                default=str,
            )
            + "\n"
        )
    return rows
