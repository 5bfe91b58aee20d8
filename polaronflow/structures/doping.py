"""Insert an intercalant cation into an A-site cavity, or n protons as O–H groups.

Nominal electrons donated: an alkali (Li, Na, K) or H gives 1, an alkaline earth (Mg, Ca) or Zn
gives 2, Al gives 3 — each electron is expected to end up on a W as a W5+ small polaron.
Dopant sites carry the site property ``dopant=True`` (False on host sites).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

import numpy as np
from pymatgen.core import Structure

from polaronflow.dopants import ION_ELECTRONS, PROTON_ELECTRONS
from polaronflow.errors import DopingError
from polaronflow.structures.sites import BridgingOxygen, Cavity, bridging_oxygens, cavity_sites

#: Smallest H–H distance accepted when placing several protons (Å): closer pairs would be
#: an H2 molecule in the making, not two O–H groups.
MIN_H_H = 2.0


@dataclass
class DopedStructure:
    """A host with its dopant(s) in place, and what the dopant means for the electron count."""

    structure: Structure
    #: element of the dopant ("Mg", "H", ...).
    ion: str
    #: indices of the dopant sites in ``structure``.
    dopant_indices: list[int]
    #: nominal electrons given to the host by all dopants together.
    electrons_donated: int
    #: number of framework W in the cell.
    n_w: int
    #: the cavity a cation sits in (cations only).
    cavity_index: int | None = None
    #: the O atoms carrying the protons (protons only).
    o_indices: list[int] = field(default_factory=list)
    #: how the protons were placed: "far", "near" or "explicit" (protons only).
    placement: str | None = None
    #: the cavity record of ``cavity_index`` in the host (cations only), kept so that the
    #: manifest does not search the host's cavities a second time.
    cavity: Cavity | None = field(default=None, repr=False, compare=False)

    @property
    def n_dopant(self) -> int:
        return len(self.dopant_indices)

    @property
    def x(self) -> float:
        """Dopant atoms per W: 1/64 for one Mg in W64O192 (Mg_xWO3), 2/64 for two H."""
        return self.n_dopant / self.n_w

    @property
    def x_fraction(self) -> Fraction:
        return Fraction(self.n_dopant, self.n_w)

    @property
    def label(self) -> str:
        """A formula label such as ``Mg_xWO3 (x = 1/64)``; for protons also the paper's H_2x."""
        if self.ion == "H" and self.n_dopant % 2 == 0:
            half = Fraction(self.n_dopant // 2, self.n_w)
            return f"H_xWO3 (x = {self.x_fraction}; written H_2xWO3 with x = {half})"
        return f"{self.ion}_xWO3 (x = {self.x_fraction})"

    def manifest(self) -> dict:
        """JSON-ready description of the doping (indices, x, electrons)."""
        data = {
            "ion": self.ion,
            "dopant_indices": list(self.dopant_indices),
            "n_dopant": self.n_dopant,
            "n_w": self.n_w,
            "x": self.x,
            "x_fraction": str(self.x_fraction),
            "label": self.label,
            "electrons_donated": self.electrons_donated,
            "formula": self.structure.composition.formula.replace(" ", ""),
            "n_sites": len(self.structure),
        }
        if self.cavity_index is not None:
            data["cavity_index"] = self.cavity_index
        if self.o_indices:
            data["o_indices"] = list(self.o_indices)
            data["placement"] = self.placement
        return data


def _count_w(structure: Structure) -> int:
    return sum(1 for site in structure if site.specie.symbol == "W")


def _with_dopant_flags(structure: Structure, dopant_indices: list[int]) -> Structure:
    flags = [i in set(dopant_indices) for i in range(len(structure))]
    structure.add_site_property("dopant", flags)
    return structure


def _resolve_cavity(cavities: list[Cavity], cavity: int | str) -> Cavity:
    if isinstance(cavity, str):
        if cavity == "auto":
            return cavities[0]
        try:
            cavity = int(cavity)
        except ValueError:
            raise DopingError(
                f"cavity {cavity!r} is not valid: give 'auto' or an index 0..{len(cavities) - 1}"
            ) from None
    if not 0 <= cavity < len(cavities):
        raise DopingError(
            f"cavity index {cavity} is out of range: this cell has {len(cavities)} cavities "
            f"(valid: 0..{len(cavities) - 1}, or 'auto')"
        )
    return cavities[cavity]


def insert_cation(host: Structure, ion: str = "Mg", cavity: int | str = "auto") -> DopedStructure:
    """Put one intercalant cation at the centre of an A-site cavity.

    Parameters
    ----------
    host
        A WO3-like host (typically the 2x2x2 supercell).
    ion
        One of :data:`ION_ELECTRONS` (Mg by default).
    cavity
        Index into :func:`~polaronflow.structures.sites.cavity_sites` of the host, or ``"auto"``:
        cavity 0, the first of orbit 0 (in γ-WO3 the (0, 1/4, 0) type).

    Raises
    ------
    DopingError
        Unknown ion or cavity index out of range.
    """
    if ion not in ION_ELECTRONS:
        valid = ", ".join(ION_ELECTRONS)
        hint = " (protons go on O: use insert_protons / --protons)" if ion == "H" else ""
        raise DopingError(f"unknown intercalant ion {ion!r}: valid ions are {valid}{hint}")
    cavities = cavity_sites(host)
    chosen = _resolve_cavity(cavities, cavity)
    structure = host.copy()
    structure.append(ion, chosen.frac_coords)
    index = len(structure) - 1
    _with_dopant_flags(structure, [index])
    return DopedStructure(
        structure=structure,
        ion=ion,
        dopant_indices=[index],
        electrons_donated=ION_ELECTRONS[ion],
        n_w=_count_w(host),
        cavity_index=chosen.index,
        cavity=chosen,
    )


def _h_frac(host: Structure, site: BridgingOxygen) -> np.ndarray:
    return host.lattice.get_fractional_coords(site.h_cart_coords)


def _choose_proton_sites(
    host: Structure, candidates: list[BridgingOxygen], n: int, placement: str, start: int = 0
) -> list[BridgingOxygen]:
    h_frac = np.array([_h_frac(host, c) for c in candidates])
    dist = host.lattice.get_all_distances(h_frac, h_frac)
    # The first proton goes on candidate ``start`` (default the lowest-index bridging O; every
    # start is equivalent up to its O orbit, which the candidate enumeration varies).
    chosen = [start]
    while len(chosen) < n:
        allowed = [
            i
            for i in range(len(candidates))
            if i not in chosen
            and candidates[i].o_index not in {candidates[j].o_index for j in chosen}
            and dist[i, chosen].min() >= MIN_H_H
        ]
        if not allowed:
            raise DopingError(
                f"cannot place {n} protons {placement}: only {len(chosen)} O–H sites are at least "
                f"{MIN_H_H} Å apart in this cell"
            )
        if placement == "far":
            nxt = max(allowed, key=lambda i: (dist[i, chosen].min(), -i))
        else:
            nxt = min(allowed, key=lambda i: (dist[i, chosen].sum(), i))
        chosen.append(nxt)
    return [candidates[i] for i in chosen]


def insert_protons(
    host: Structure,
    n: int = 2,
    placement: Literal["far", "near"] = "far",
    o_indices: list[int] | None = None,
    first_o: int | None = None,
) -> DopedStructure:
    """Add ``n`` protons as O–H groups on bridging oxygens.

    Each H sits 0.98 Å from its O along the outer bisector of the W–O–W unit, pointing into a
    cavity (see :func:`~polaronflow.structures.sites.bridging_oxygens`).

    Parameters
    ----------
    host
        A WO3-like host.
    n
        Number of protons (each donates one electron).
    placement
        ``"far"``: each next proton as far as possible from those placed (greedy max–min
        distance); ``"near"``: as close as possible but at least :data:`MIN_H_H` Å apart.
        Ignored when ``o_indices`` is given.
    o_indices
        Explicit O site indices (of the host) to protonate.
    first_o
        O site index of the first proton for ``placement`` (default: the lowest-index bridging
        O); the others follow the placement rule.  Ignored when ``o_indices`` is given.

    Raises
    ------
    DopingError
        n < 1, more protons than bridging O sites, an index that is not a bridging O, or an
        unknown placement.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise DopingError(f"number of protons {n!r} must be a positive integer")
    candidates = bridging_oxygens(host)
    if n > len(candidates):
        raise DopingError(
            f"{n} protons asked for, but this cell has only {len(candidates)} bridging O sites"
        )
    if o_indices is not None:
        by_o = {c.o_index: c for c in candidates}
        bad = [i for i in o_indices if i not in by_o]
        if bad:
            raise DopingError(
                f"O indices {bad} are not bridging O sites of the host (valid: O site indices "
                f"{min(by_o)}..{max(by_o)})"
            )
        if len(set(o_indices)) != len(o_indices):
            raise DopingError(f"O indices {o_indices} repeat an O: one proton per O")
        if len(o_indices) != n:
            raise DopingError(f"{len(o_indices)} O indices given for {n} protons")
        chosen = [by_o[i] for i in o_indices]
        placement_used = "explicit"
    else:
        if placement not in ("far", "near"):
            raise DopingError(f"placement {placement!r} is not valid: use 'far' or 'near'")
        start = 0
        if first_o is not None:
            positions = [k for k, c in enumerate(candidates) if c.o_index == first_o]
            if not positions:
                raise DopingError(f"first_o {first_o} is not a bridging O site of the host")
            start = positions[0]
        chosen = _choose_proton_sites(host, candidates, n, placement, start)
        placement_used = placement
    structure = host.copy()
    dopant_indices = []
    for site in chosen:
        structure.append("H", site.h_cart_coords, coords_are_cartesian=True)
        dopant_indices.append(len(structure) - 1)
    _with_dopant_flags(structure, dopant_indices)
    return DopedStructure(
        structure=structure,
        ion="H",
        dopant_indices=dopant_indices,
        electrons_donated=n * PROTON_ELECTRONS,
        n_w=_count_w(host),
        o_indices=[c.o_index for c in chosen],
        placement=placement_used,
    )
