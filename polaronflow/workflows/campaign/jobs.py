"""The campaign's structure-only jobs (jobflow): the supercell and the dopant + polaron seeds.

Importable by FireWorks workers; the structure work itself is in
:mod:`polaronflow.workflows.campaign.plan` (the dry run calls the same functions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobflow import job

from polaronflow import naming

if TYPE_CHECKING:
    from pymatgen.core import Structure


@job(name=naming.SUPERCELL)
def supercell_job(structure: Structure, scaling: Sequence[int]) -> Structure:
    """Job: the supercell of the relaxed unit cell (moments dropped: a fresh start)."""
    from polaronflow.workflows.campaign.plan import supercell_of

    return supercell_of(structure, scaling)


@job(name="seed")
def seed_job(host: Structure, **settings: Any) -> dict[str, Any]:
    """Job: the dopant and polaron seeds in the relaxed pristine supercell.

    Returns ``{"structure": seeded structure, "manifest": doping and seeds}`` (see
    :func:`polaronflow.workflows.campaign.plan.seed_system`).
    """
    from polaronflow.workflows.campaign.plan import seed_system

    return seed_system(host, **settings)
