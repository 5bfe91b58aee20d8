"""The campaign's structure-only jobs (jobflow), importable by FireWorks workers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobflow import job

if TYPE_CHECKING:
    from pymatgen.core import Structure


@job(name="supercell")
def supercell_job(structure: Structure, scaling: Sequence[int]) -> Structure:
    """Job: the supercell of the relaxed unit cell (moments dropped: a fresh start)."""
    from polaronflow.workflows.campaign.flow import supercell_of

    return supercell_of(structure, scaling)


@job(name="seed")
def seed_job(host: Structure, **kwargs: Any) -> dict[str, Any]:
    """Job: the dopant and polaron seeds in the relaxed pristine supercell.

    Returns ``{"structure": seeded structure, "manifest": doping and seeds}`` (see
    :func:`polaronflow.workflows.campaign.flow.seed_system`).
    """
    from polaronflow.workflows.campaign.flow import seed_system

    return seed_system(host, **kwargs)
