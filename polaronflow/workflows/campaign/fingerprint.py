"""A campaign's fingerprint: what it computes, as one sha256 (idempotent submission).

The fingerprint walks the same :class:`~polaronflow.workflows.campaign.plan.CampaignPlan` as
the dry run and the Flow builder, so anything that changes a job's input changes it.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polaronflow.workflows.campaign.options import CampaignOptions
    from polaronflow.workflows.campaign.plan import CampaignPlan


def _canonical_structure(structure: Any) -> dict[str, Any]:
    # Rounded so that a campaign rebuilt from the same inputs on another machine (different
    # last-bit floating point) has the same fingerprint.
    return {
        "lattice": [[round(float(x), 6) for x in row] for row in structure.lattice.matrix],
        "species": [str(site.species) for site in structure],
        "frac_coords": [
            [round(float(x) % 1.0, 6) % 1.0 for x in site.frac_coords] for site in structure
        ],
        "site_properties": {
            k: [v if not hasattr(v, "tolist") else v.tolist() for v in vals]
            for k, vals in sorted(structure.site_properties.items())
        },
    }


def _generator_settings(generator: Any) -> dict[str, Any]:
    import dataclasses

    fields = {
        f.name: getattr(generator, f.name)
        for f in dataclasses.fields(generator)
        # the parameter file's path is not the campaign: its tags are (config_dict, updates)
        if f.name not in ("structure", "parameters_file") and not f.name.startswith("_")
    }
    fields["incar_updates"] = generator.incar_updates
    return fields


#: Run-time settings that do not change the science.
_RUNTIME = ("walltime", "vasp_cmd", "potcar_spec")


def _loop_settings(loop: Any) -> dict[str, Any]:
    import dataclasses

    settings = {
        f.name: getattr(loop, f.name)
        for f in dataclasses.fields(loop)
        if f.name not in (*_RUNTIME, "static_generator", "static_maker")
    }
    if loop.static_generator is not None:
        settings["static_generator"] = _generator_settings(loop.static_generator)
    return settings


def campaign_fingerprint(options: CampaignOptions, plan: CampaignPlan | None = None) -> str:
    """A sha256 of what a campaign computes: options, start structures and input sets.

    Run-time settings that do not change the science (VASP command, wall time, POTCAR.spec
    instead of POTCAR) are left out, so re-submitting with another ``--vasp-cmd`` is still
    recognised as the same campaign. File paths are replaced by the content they resolve to
    (the start structures, the parameter file's INCAR tags).

    Parameters
    ----------
    options
        The campaign options.
    plan
        :func:`~polaronflow.workflows.campaign.plan.plan_campaign` of ``options`` (built if
        None).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    from monty.json import jsanitize

    from polaronflow.workflows.campaign.plan import plan_campaign

    if plan is None:
        plan = plan_campaign(options)
    record: dict[str, Any] = {
        "options": options.model_dump(
            mode="json",
            exclude={*_RUNTIME, "host", "parameters_file"},
        ),
        "jobs": [
            {
                "name": j.name,
                "role": str(j.role),
                "parents": list(j.parents),
                "structure": _canonical_structure(j.structure),
                "calc": None if j.spec is None else j.spec.calc,
                "copy_wavecar": None if j.spec is None else j.spec.copy_wavecar,
                "input_set": None if j.spec is None else _generator_settings(j.spec.generator),
            }
            for j in plan.jobs()
        ],
        "systems": [
            {"tag": s.tag, "seed": s.seed.kwargs(), "electrons": s.electrons} for s in plan.systems
        ],
        "references": [_loop_settings(r.kconv) for r in plan.references],
    }
    text = json.dumps(
        jsanitize(record, strict=False, allow_bson=False), sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()
