"""What a campaign computes: :class:`CampaignOptions` (every field defaults to the paper's
value) and the dopant entries it names (``Mg``, ``Li``, ``2H`` ...).

Importable without jobflow or atomate2 (the dry run and the CLI validate options first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polaronflow import naming
from polaronflow.errors import WorkflowError
from polaronflow.workflows.campaign.planning import DEFAULT_SCHEDULE, validate_schedule
from polaronflow.workflows.vasp.spec import DEFAULT_RESEED_STRETCH

_PROTONS = re.compile(r"^(\d*)H$")


class CampaignOptions(BaseModel):
    """What to compute. Every field has the paper's value as default."""

    model_config = ConfigDict(extra="forbid")

    ions: list[str] = Field(
        default_factory=lambda: ["Mg", "2H"],
        description="Dopants, one doped system each: a cation symbol (Mg, Li, ...) or 'nH' for "
        "n protons (the paper: Mg and 2H).",
    )
    cavity: int | Literal["auto"] = Field(
        default="auto", description="A-site cavity index for cations, or 'auto'."
    )
    placement: Literal["far", "near"] = Field(
        default="far", description="Relative placement of several protons."
    )
    polarons: list[str] = Field(
        default_factory=lambda: ["auto"],
        description="Polaron configurations, one run each: 'auto' or W site indices '37,0'.",
    )
    nupdown: list[int | None] = Field(
        default_factory=lambda: [None],
        description="NUPDOWN variants (μB): None = free; 0 and 2 are the two-polaron spin states.",
    )
    schedule: tuple[float, ...] = Field(
        default=DEFAULT_SCHEDULE, description="U schedule on W d (eV), in run order."
    )
    final_isif: int = Field(default=3, description="ISIF of the last ramp step.")
    polaron_check: bool = Field(
        default=True,
        description="After every ramp step and the final static, check that the donated "
        "electrons stayed localised (|m| >= 0.3 μB on as many W as electrons); stop that "
        "ramp with the reason when they did not.",
    )
    reseed_on_delocalisation: bool = Field(
        default=False,
        description="Instead of stopping, retry a delocalised ramp step once, starting fresh "
        "(no WAVECAR; ISTART = 0, ICHARG = 2) with the polaron seeds put back on the W sites "
        "that held them before the step.",
    )
    reseed_stretch: float = Field(
        default=DEFAULT_RESEED_STRETCH,
        ge=0.0,
        le=0.2,
        description="Bond-distortion seed of the re-seeded retry: fractional stretch of the "
        "seed W's six W–O bonds (0.03 = +3 %; 0 = moments only).",
    )
    reseed_at_previous_u: bool = Field(
        default=False,
        description="The re-seeded retry first re-localises at the previous, higher U of the "
        "schedule, then repeats the step from that run's WAVECAR.",
    )
    search: bool = Field(
        default=False,
        description="Search the polaron ground state instead of trusting one guessed "
        "configuration: screen every candidate of each dopant (both cavity orbits, the "
        "pseudo-symmetry classes of the polaron sites over search_shells, NUPDOWN 0 and 2; "
        "O-site orbits for protons) with the cheaper screening settings, then run the full U "
        "ramp and static for the search_keep lowest-energy localised candidates.",
    )
    search_shells: tuple[int, ...] = Field(
        default=(1, 2), description="W shells around the cation the polarons are drawn from."
    )
    search_tolerance: float | None = Field(
        default=0.3,
        description="Pseudo-symmetry tolerance (Å): configurations whose sorted dopant–W and "
        "W–W distances agree within it are one candidate; None or 0 keeps exact symmetry only.",
    )
    search_keep: int = Field(
        default=3, ge=1, description="Candidates per dopant that get the full ramp and static."
    )
    search_limit: int | None = Field(
        default=None,
        ge=1,
        description="Screen at most this many candidates per dopant (in enumeration order: "
        "cavity orbit, shells, distances); None screens all. A budget cap, recorded.",
    )
    screen_ediffg: float = Field(
        default=-0.05,
        description="EDIFFG of the screening relaxations (eV/Å; our choice: 50 meV/Å ranks "
        "configurations, the full ramp then relaxes to the paper's 10 meV/Å).",
    )
    screen_nsw: int = Field(
        default=40, ge=1, description="Most ionic steps of a screening relaxation."
    )
    screen_kpoints: tuple[int, int, int] = Field(
        default=(1, 1, 1),
        description="Γ-centred mesh of the screening runs (our choice: Γ only; the full ramp "
        "uses the paper's mesh).",
    )
    analysis: bool = Field(
        default=True,
        description="End the Flow with the 'campaign-analysis' job, which stores the analysis "
        "and the reproduction of the paper in the JobStore.",
    )
    supercell: tuple[int, int, int] = Field(
        default=(2, 2, 2), description="Supercell multiples of the unit cell."
    )
    host: Path | None = Field(
        default=None, description="Host CIF/POSCAR; None uses the embedded γ-WO3."
    )
    seed_moment: float = Field(default=1.0, description="Initial moment on a seed W (μB).")
    stretch: float = Field(default=0.0, description="Fractional W–O stretch of seed W (0-0.2).")
    references: bool = Field(default=True, description="Include the reference phases.")
    kconv_start_length: float = Field(
        default=20.0, description="k-point length L of the first convergence mesh (Å)."
    )
    kconv_step: float = Field(default=5.0, description="Increment of L between meshes (Å).")
    kconv_max_steps: int = Field(default=12, description="Most statics per convergence loop.")
    parameters_file: Path | None = Field(
        default=None, description="INCAR parameter YAML; None uses templates/scan_u_incar.yaml."
    )
    potcars: dict[str, str] = Field(
        default_factory=dict,
        description="POTCAR symbol per element replacing the defaults (W_sv, O, Mg_pv, H).",
    )
    potcar_spec: bool = Field(
        default=False, description="Run jobs write POTCAR.spec instead of POTCAR (no POTCARs)."
    )
    walltime: int | None = Field(default=None, description="Wall time per job (s).")
    vasp_cmd: str | None = Field(default=None, description="VASP command for custodian.")

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> tuple[float, ...]:
        return validate_schedule(value)

    @field_validator("ions")
    @classmethod
    def _ions(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one ion (e.g. Mg or 2H)")
        return value

    @field_validator("polarons")
    @classmethod
    def _polarons(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one polaron configuration ('auto' or W indices)")
        return [str(v).strip() for v in value]

    @field_validator("nupdown")
    @classmethod
    def _nupdown(cls, value: list[int | None]) -> list[int | None]:
        if not value:
            raise ValueError("give at least one NUPDOWN variant (free, 0, 2)")
        if any(v is not None and v < 0 for v in value):
            raise ValueError("NUPDOWN must be >= 0 (or free)")
        if len(set(value)) != len(value):
            raise ValueError("NUPDOWN variants repeat")
        return value

    @model_validator(mode="after")
    def _search_owns_configurations(self) -> CampaignOptions:
        if self.search and (self.polarons != ["auto"] or self.nupdown != [None]):
            raise WorkflowError(
                "a search enumerates the polaron configurations and spin states itself: "
                "leave --polarons and --nupdown at their defaults with --search"
            )
        if self.search and any(s < 1 for s in self.search_shells):
            raise WorkflowError(f"search shells {self.search_shells} must be >= 1")
        return self


def make_options(**kwargs: Any) -> CampaignOptions:
    """Validate campaign options, turning pydantic errors into :class:`WorkflowError`."""
    from pydantic import ValidationError

    try:
        return CampaignOptions(**kwargs)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "options"
        msg = err["msg"].removeprefix("Value error, ")
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, WorkflowError):
            raise ctx_error from None
        raise WorkflowError(f"invalid campaign option {where}: {msg}") from None


@dataclass
class DopantSpec:
    """One dopant entry of the options: a cation or n protons."""

    ion: str
    protons: int | None
    label: str


def parse_ion(text: str) -> DopantSpec:
    """Parse ``Mg`` / ``Li`` (one cation) or ``2H`` / ``H`` (protons; H alone means 2).

    Raises
    ------
    WorkflowError
        For an empty or unknown entry.
    """
    from polaronflow.structures.doping import ION_ELECTRONS

    t = str(text).strip()
    m = _PROTONS.match(t)
    if m:
        n = int(m.group(1)) if m.group(1) else 2
        if n < 1:
            raise WorkflowError(f"ion {text!r}: the number of protons must be >= 1")
        return DopantSpec(ion="H", protons=n, label=naming.dopant_label("H", n))
    symbol = t[:1].upper() + t[1:].lower()
    if symbol not in ION_ELECTRONS:
        raise WorkflowError(
            f"unknown ion {text!r}: give a cation ({', '.join(ION_ELECTRONS)}) or 'nH' for "
            "n protons (e.g. 2H)"
        )
    return DopantSpec(ion=symbol, protons=None, label=naming.dopant_label(symbol))


def electrons_donated(dopant: DopantSpec) -> int:
    """Nominal electrons a dopant entry gives the host (one per proton; see ION_ELECTRONS)."""
    from polaronflow.structures.doping import ION_ELECTRONS, PROTON_ELECTRONS

    if dopant.protons:
        return dopant.protons * PROTON_ELECTRONS
    return ION_ELECTRONS[dopant.ion]


def _check_nupdown(dopant: DopantSpec, variants: Sequence[int | None]) -> None:
    # The WO3 host has an even electron count: the spin excess of n extra electrons has n's
    # parity and cannot exceed n when each sits on its own W.
    n = electrons_donated(dopant)
    for v in variants:
        if v is not None and (v > n or (n - v) % 2):
            valid = ", ".join(str(k) for k in range(n % 2, n + 1, 2))
            raise WorkflowError(
                f"NUPDOWN {v} is impossible for {dopant.label} ({n} extra electrons): "
                f"use free or {valid}"
            )
