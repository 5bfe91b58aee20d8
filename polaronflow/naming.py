"""Job names and roles of a polaronflow campaign: the one contract between the campaign, the
dry run, ``collect``, ``reproduce``, ``analyze``, the analysis job and the demo.

Every name a campaign gives a job is made here, and every consumer that finds a run by its
name parses it here (:func:`parse_job_name`), so renaming a job is one change in this module
and a name that does not parse is an error, never a silently "missing" row.

Names (``T`` is a doped system's tag, :func:`system_tag`; ``P`` a reference phase)::

    wo3-unit-relax                  relaxed unit cell                       Role.UNIT_RELAX
    wo3-supercell                   (python) supercell of the relaxed cell  Role.SUPERCELL
    wo3-supercell-relax             pristine supercell relaxation           Role.SUPERCELL_RELAX
    wo3-supercell-static            pristine static                         Role.SUPERCELL_STATIC
    T-seed                          (python) dopant + polaron seeds         Role.SEED
    T-ramp-u9 ... T-ramp-u5         U-ramp relaxations                      Role.RAMP_STEP
    T-ramp-u7-reseed                re-seeded retry of a ramp step          Role.RAMP_STEP
    T-ramp-u7-reseed-u8             its fresh start at the previous U       Role.RAMP_STEP
    T-static                        static at the final U                   Role.RAMP_STATIC
    ref-P-relax                     reference relaxation                    Role.REFERENCE_RELAX
    ref-P-kconv                     k-point convergence loop (check jobs)   Role.KPOINT_LOOP
    ref-P-kconv-k7x7x7              one static of that loop                 Role.KPOINT_STATIC
    campaign-analysis               the final analysis job                  Role.ANALYSIS

``T`` is the dopant label (``mg``, ``li``; ``h2`` for two protons), then ``-c{i}`` for the
i-th polaron configuration when several are run and ``-nupdown{N}`` for a fixed NUPDOWN. A
ground-state search screens candidate ``k`` as ``T-screen{k}`` (e.g. ``mg-screen12-nupdown2``,
:func:`screen_tag`) and runs the full ramp of a selected candidate as ``T-c{k}``; its choice
is the job ``T-select`` (:func:`select_name`).

This module imports nothing from the rest of the package (and nothing heavy), so every layer
can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "ANALYSIS",
    "SUPERCELL",
    "SUPERCELL_RELAX",
    "SUPERCELL_STATIC",
    "UNIT_RELAX",
    "JobName",
    "Role",
    "check_safe_name",
    "dopant_label",
    "format_u",
    "kpoint_loop_name",
    "kpoint_prefix",
    "kpoint_static_name",
    "parse_job_name",
    "ramp_step_name",
    "reference_relax_name",
    "reseed_name",
    "screen_tag",
    "seed_name",
    "select_name",
    "static_name",
    "system_tag",
]


class Role(StrEnum):
    """What a job of the campaign is (stored as ``role`` in every job's record)."""

    UNIT_RELAX = "unit-relax"
    SUPERCELL = "supercell"
    SUPERCELL_RELAX = "supercell-relax"
    SUPERCELL_STATIC = "supercell-static"
    SEED = "seed"
    SELECT = "search-select"
    RAMP_STEP = "ramp-step"
    RAMP_STATIC = "ramp-static"
    REFERENCE_RELAX = "reference-relax"
    KPOINT_LOOP = "kpoint-loop"
    KPOINT_STATIC = "kpoint-convergence"
    ANALYSIS = "analysis"


UNIT_RELAX = "wo3-unit-relax"
SUPERCELL = "wo3-supercell"
SUPERCELL_RELAX = "wo3-supercell-relax"
SUPERCELL_STATIC = "wo3-supercell-static"
ANALYSIS = "campaign-analysis"

_FIXED = {
    UNIT_RELAX: Role.UNIT_RELAX,
    SUPERCELL: Role.SUPERCELL,
    SUPERCELL_RELAX: Role.SUPERCELL_RELAX,
    SUPERCELL_STATIC: Role.SUPERCELL_STATIC,
    ANALYSIS: Role.ANALYSIS,
}


def format_u(u: float) -> str:
    """A U value as it appears in a job name: 9.0 -> "9", 6.5 -> "6.5"."""
    return f"{float(u):g}"


def dopant_label(ion: str, protons: int | None = None) -> str:
    """The label of a dopant in job names: ``Mg`` -> ``mg``, two protons -> ``h2``."""
    if protons:
        return f"h{int(protons)}"
    return ion.lower()


def system_tag(label: str, config_index: int | None = None, nupdown: int | None = None) -> str:
    """Job-name prefix of a doped system, e.g. ``mg``, ``mg-c2``, ``h2-nupdown0``."""
    tag = label
    if config_index is not None:
        tag += f"-c{config_index}"
    if nupdown is not None:
        tag += f"-nupdown{nupdown}"
    return tag


def screen_tag(label: str, candidate: int, nupdown: int | None = None) -> str:
    """Job-name prefix of the screening run of search candidate ``candidate``."""
    return system_tag(f"{label}-screen{candidate}", None, nupdown)


def select_name(label: str) -> str:
    """The job of a ground-state search that ranks the screened candidates of ``label``."""
    return f"{label}-select"


def seed_name(tag: str) -> str:
    """The structure job that places the dopant and the polaron seeds."""
    return f"{tag}-seed"


def ramp_step_name(tag: str, u: float) -> str:
    """The relaxation of a U ramp at ``u`` (eV)."""
    return f"{tag}-ramp-u{format_u(u)}"


def reseed_name(step: str, u: float | None = None) -> str:
    """The re-seeded retry of a ramp step; with ``u``, its fresh start at that (higher) U."""
    return f"{step}-reseed" if u is None else f"{step}-reseed-u{format_u(u)}"


def static_name(tag: str) -> str:
    """The static at the end of a system's U ramp."""
    return f"{tag}-static"


def reference_relax_name(phase: str) -> str:
    """The relaxation of a reference phase (``MgO``, ``Mg``, ``O2`` ...)."""
    return f"ref-{phase}-relax"


def kpoint_prefix(phase: str) -> str:
    """Name prefix of a reference's k-point convergence loop (``ref-MgO``)."""
    return f"ref-{phase}"


def kpoint_loop_name(prefix: str) -> str:
    """The check jobs of a k-point loop (the last one's output is the converged result)."""
    return f"{prefix}-kconv"


def kpoint_static_name(prefix: str, mesh: tuple[int, ...] | list[int]) -> str:
    """One static of a k-point loop at ``mesh``."""
    return f"{prefix}-kconv-k{'x'.join(str(int(n)) for n in mesh)}"


@dataclass(frozen=True)
class JobName:
    """A parsed job name."""

    name: str
    role: Role
    #: doped system tag (seed, ramp steps, static)
    system: str | None = None
    #: dopant label of the system (``mg``, ``h2``)
    label: str | None = None
    #: polaron configuration index (``-c{i}``)
    config: int | None = None
    #: search candidate screened (``-screen{k}``)
    screen: int | None = None
    #: fixed NUPDOWN (``-nupdown{N}``)
    nupdown: int | None = None
    #: U of a ramp step (eV)
    u: float | None = None
    #: True for a re-seeded retry
    reseed: bool = False
    #: reference phase
    phase: str | None = None
    #: k-point mesh of a convergence static
    mesh: tuple[int, int, int] | None = None

    @property
    def is_vasp(self) -> bool:
        """Whether the job runs VASP (structure-only, loop and analysis jobs do not)."""
        return self.role not in (
            Role.SUPERCELL,
            Role.SEED,
            Role.SELECT,
            Role.KPOINT_LOOP,
            Role.ANALYSIS,
        )


_TAG = (
    r"(?P<system>(?P<label>[a-z]+\d*)(?:-screen(?P<screen>\d+))?(?:-c(?P<config>\d+))?"
    r"(?:-nupdown(?P<nupdown>\d+))?)"
)
_PHASE = r"(?P<phase>[A-Z][A-Za-z0-9]*)"
_PATTERNS: list[tuple[re.Pattern[str], Role]] = [
    (re.compile(rf"^{_TAG}-seed$"), Role.SEED),
    (re.compile(r"^(?P<label>[a-z]+\d*)-select$"), Role.SELECT),
    (
        re.compile(
            rf"^{_TAG}-ramp-u(?P<u>\d+(?:\.\d+)?)(?P<reseed>-reseed(?:-u(?P<ru>\d+(?:\.\d+)?))?)?$"
        ),
        Role.RAMP_STEP,
    ),
    (re.compile(rf"^{_TAG}-static$"), Role.RAMP_STATIC),
    (re.compile(rf"^ref-{_PHASE}-relax$"), Role.REFERENCE_RELAX),
    (re.compile(rf"^ref-{_PHASE}-kconv$"), Role.KPOINT_LOOP),
    (re.compile(rf"^ref-{_PHASE}-kconv-k(?P<n1>\d+)x(?P<n2>\d+)x(?P<n3>\d+)$"), Role.KPOINT_STATIC),
]


def parse_job_name(name: str) -> JobName | None:
    """Parse a campaign job name; None when it is not one polaronflow makes.

    Parameters
    ----------
    name
        A job (or run-folder) name, e.g. ``mg-ramp-u7``, ``ref-MgO-kconv-k7x7x7``.

    Returns
    -------
    JobName or None
    """
    if name in _FIXED:
        return JobName(name=name, role=_FIXED[name])
    for pattern, role in _PATTERNS:
        m = pattern.match(name)
        if m is None:
            continue
        g = m.groupdict()
        mesh = None
        if g.get("n1") is not None:
            mesh = (int(g["n1"]), int(g["n2"]), int(g["n3"]))
        return JobName(
            name=name,
            role=role,
            system=g.get("system"),
            label=g.get("label"),
            config=int(g["config"]) if g.get("config") else None,
            screen=int(g["screen"]) if g.get("screen") else None,
            nupdown=int(g["nupdown"]) if g.get("nupdown") else None,
            u=float(g["ru"] or g["u"]) if g.get("u") else None,
            reseed=bool(g.get("reseed")),
            phase=g.get("phase"),
            mesh=mesh,
        )
    return None


_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def check_safe_name(name: str) -> str:
    """Return ``name`` when it is safe as one path component, else raise ValueError.

    A job name becomes a folder or link name (``collect``, the analysis job): it must not be
    empty, contain a path separator, start with a dot or a dash, or be ``.``/``..``.
    """
    if not isinstance(name, str) or not _SAFE.match(name) or name in (".", ".."):
        raise ValueError(
            f"job name {name!r} is not a safe folder name (letters, digits, '.', '_', '+', '-'; "
            "no '/', not starting with '.' or '-')"
        )
    return name
