"""Reference phases for reaction energies: elemental metals, their oxides, O2 (and H2, H2O).

Prototypes come from ``ase.build`` and are converted to pymatgen at the boundary.  Lattice
constants are experimental room-temperature values, used only as starting points: every
reference is relaxed by the workflow.  A phase with no standard prototype (e.g. corundum
Al2O3) raises :class:`~polaronflow.errors.ReferencePhaseError` asking for a structure file.
"""

from __future__ import annotations

from collections.abc import Callable

from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from polaronflow.errors import ReferencePhaseError

#: Edges of the box around a molecule (Å): ≥ 12 Å and unequal, so the box has no cubic
#: symmetry that could bias the molecule's orbitals (O2's π* occupation).
MOLECULE_BOX = (12.0, 12.5, 13.0)


def _bulk(name: str, crystal: str, **kwargs) -> Callable[[], Structure]:
    def build() -> Structure:
        from ase.build import bulk

        return AseAtomsAdaptor.get_structure(bulk(name, crystal, **kwargs))

    return build


def _molecule(name: str, triplet: bool = False) -> Callable[[], Structure]:
    def build() -> Structure:
        from ase.build import molecule

        atoms = molecule(name)
        if name == "O2":
            # experimental bond length 1.2075 Å (ase's G2 geometry is 1.245 Å from MP2)
            atoms.set_distance(0, 1, 1.2075, fix=0.5)
        atoms.set_cell(MOLECULE_BOX)
        atoms.center()
        atoms.pbc = True
        structure = AseAtomsAdaptor.get_structure(atoms)
        structure.properties["molecule"] = True
        moments = [1.0 if triplet else 0.0] * len(structure)
        structure.add_site_property("magmom", moments)
        return structure

    return build


#: Reference phases that are metals: their jobs use metal smearing (Methfessel–Paxton for the
#: relaxation, tetrahedron with Blöchl corrections for the energies; the parameter file's
#: ``metal`` section). Everything else (oxides, molecules) is treated as an insulator.
METAL_PHASES = frozenset({"Mg", "Li", "Na", "K", "Ca", "Zn", "Al"})

#: Fixed total moment (NUPDOWN, μB) of a reference phase whose spin state is known: O2 is a
#: triplet (2 μB); left free, a molecule in a box can end in the singlet.
FIXED_MOMENTS: dict[str, int] = {"O2": 2}

#: name -> (builder, provenance note).  Lattice constants: experiment, room temperature.
REFERENCE_PHASES: dict[str, tuple[Callable[[], Structure], str]] = {
    "MgO": (_bulk("MgO", "rocksalt", a=4.212), "rock salt, a = 4.212 Å"),
    "Mg": (_bulk("Mg", "hcp", a=3.209, c=5.211), "hcp, a = 3.209 Å, c = 5.211 Å"),
    "O2": (_molecule("O2", triplet=True), "triplet O2, d = 1.2075 Å, box 12 × 12.5 × 13 Å"),
    "H2": (_molecule("H2"), "H2 molecule, box 12 × 12.5 × 13 Å"),
    "H2O": (_molecule("H2O"), "H2O molecule, box 12 × 12.5 × 13 Å"),
    "Li": (_bulk("Li", "bcc", a=3.51), "bcc, a = 3.51 Å"),
    "Na": (_bulk("Na", "bcc", a=4.23), "bcc, a = 4.23 Å"),
    "K": (_bulk("K", "bcc", a=5.23), "bcc, a = 5.23 Å"),
    "Ca": (_bulk("Ca", "fcc", a=5.58), "fcc, a = 5.58 Å"),
    "Zn": (_bulk("Zn", "hcp", a=2.665, c=4.947), "hcp, a = 2.665 Å, c = 4.947 Å"),
    "Al": (_bulk("Al", "fcc", a=4.05), "fcc, a = 4.05 Å"),
    # antifluorite M2O: O on the fcc lattice, M in the tetrahedral holes
    "Li2O": (_bulk("OLi2", "fluorite", a=4.61), "antifluorite, a = 4.61 Å"),
    "Na2O": (_bulk("ONa2", "fluorite", a=5.55), "antifluorite, a = 5.55 Å"),
    "K2O": (_bulk("OK2", "fluorite", a=6.44), "antifluorite, a = 6.44 Å"),
    "CaO": (_bulk("CaO", "rocksalt", a=4.81), "rock salt, a = 4.81 Å"),
    "ZnO": (
        _bulk("ZnO", "wurtzite", a=3.25, c=5.207, u=0.382),
        "wurtzite, a = 3.25 Å, c = 5.207 Å",
    ),
}

#: For each intercalant: its metal and its oxide (the reaction M + y/2 O2 → MOy).
ION_REFERENCES: dict[str, tuple[str, str]] = {
    "Mg": ("Mg", "MgO"),
    "Li": ("Li", "Li2O"),
    "Na": ("Na", "Na2O"),
    "K": ("K", "K2O"),
    "Ca": ("Ca", "CaO"),
    "Zn": ("Zn", "ZnO"),
    "Al": ("Al", "Al2O3"),
    "H": ("H2", "H2O"),
}


def reference_structure(name: str) -> Structure:
    """The starting structure of a reference phase.

    Parameters
    ----------
    name
        A key of :data:`REFERENCE_PHASES` ("MgO", "Mg", "O2", ...).

    Returns
    -------
    Structure
        ``properties["reference"]`` names the phase and its prototype; molecules have
        ``properties["molecule"] = True`` and a ``magmom`` site property (2 μB for O2);
        ``properties["metal"]`` is True for the phases of :data:`METAL_PHASES`, False
        otherwise; ``properties["nupdown"]`` is the fixed total moment of
        :data:`FIXED_MOMENTS` (2 for O2), None otherwise.

    Raises
    ------
    ReferencePhaseError
        No prototype is known: the message asks for a structure file.
    """
    if name not in REFERENCE_PHASES:
        known = ", ".join(sorted(REFERENCE_PHASES))
        raise ReferencePhaseError(
            f"no built-in structure for reference phase {name!r} (built in: {known}); "
            "give a relaxed-starting structure file for it instead"
        )
    builder, note = REFERENCE_PHASES[name]
    structure = builder()
    structure.properties["reference"] = {"phase": name, "prototype": note}
    structure.properties["metal"] = name in METAL_PHASES
    structure.properties["nupdown"] = FIXED_MOMENTS.get(name)
    return structure


def is_metal_phase(structure: Structure) -> bool:
    """Whether a reference structure is a metal (``properties["metal"]``, set above)."""
    return bool(structure.properties.get("metal", False))


def references_for_ion(ion: str) -> dict[str, Structure]:
    """The reference phases needed for the oxide-formation energy of an intercalant.

    For Mg: ``{"Mg": hcp Mg, "MgO": rock-salt MgO, "O2": triplet O2}``.

    Raises
    ------
    ReferencePhaseError
        Unknown ion, or a phase without a prototype (Al2O3): the message asks for a file.
    """
    if ion not in ION_REFERENCES:
        raise ReferencePhaseError(
            f"no reference phases known for ion {ion!r} (known: {', '.join(ION_REFERENCES)})"
        )
    metal, oxide = ION_REFERENCES[ion]
    return {
        metal: reference_structure(metal),
        oxide: reference_structure(oxide),
        "O2": reference_structure("O2"),
    }
