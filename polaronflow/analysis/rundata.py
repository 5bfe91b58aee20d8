"""What the analysis reads out of one finished VASP run folder.

:class:`RunData` is the contract between :mod:`polaronflow.analysis.readers` (which fills it
from vasprun.xml / OUTCAR / DOSCAR / CONTCAR, gzipped or not) and the analysis modules
(:mod:`~polaronflow.analysis.polarons`, :mod:`~polaronflow.analysis.electronic`,
:mod:`~polaronflow.analysis.thermo`, :mod:`~polaronflow.analysis.structure`), which only ever
consume it.  It is a plain dataclass of numpy arrays so the fast path never imports pymatgen;
``to_structure()`` converts at the boundary when a caller needs a pymatgen ``Structure``.

Conventions: energies in eV, lengths in Å, moments in μB; spin index 0 = up, 1 = down;
arrays are ``None`` when the files do not hold them (never zero-filled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The string the mock-VASP emulator writes near the top of every file it produces
#: (vasprun.xml as an XML comment, OUTCAR/OSZICAR as a line). Readers look for it in the
#: first few kB and set :attr:`RunData.synthetic`.
SYNTHETIC_MARKER = "POLARONFLOW-SYNTHETIC"


@dataclass
class RunData:
    """Everything analysis needs from one VASP run folder (see module docstring)."""

    path: Path
    #: file kind -> path actually read, e.g. {"vasprun": ".../vasprun.xml.gz", "outcar": ...}
    files: dict[str, Path] = field(default_factory=dict)
    #: True when any file carries :data:`SYNTHETIC_MARKER` (written by the emulator).
    synthetic: bool = False

    # --- parameters -------------------------------------------------------------------
    #: the INCAR as VASP echoed it (vasprun <incar>), keys upper case, values typed.
    incar: dict[str, Any] = field(default_factory=dict)
    #: the parameters that matter, resolved from <parameters> (or OUTCAR) with VASP's
    #: defaults: ISPIN, NUPDOWN, LORBIT, ENCUT, NELM, EDIFF, EDIFFG, NSW, IBRION, ISIF,
    #: ISMEAR, SIGMA, LDAU, LDAUTYPE, LDAUU, LDAUL, LDAUJ (lists per species), GGA, METAGGA,
    #: NELECT, NBANDS.
    parameters: dict[str, Any] = field(default_factory=dict)
    #: functional label derived from INCAR/parameters: "SCAN", "R2SCAN", "PBE", "PBESOL", ...
    functional: str | None = None
    #: POTCAR titles in species order, e.g. ["PAW_PBE W_sv 04Sep2015", "PAW_PBE O 08Apr2002"]
    potcars: list[str] = field(default_factory=list)
    #: POTCAR species blocks in POSCAR order: (element, number of sites). An element may
    #: appear in several blocks (e.g. a separate block for seeded polaron sites); the per-type
    #: INCAR lists (LDAUU, LDAUL, LDAUJ, MAGMOM counts) and ``potcars`` follow these blocks.
    species_blocks: list[tuple[str, int]] = field(default_factory=list)
    #: valence electrons of each block's POTCAR (ZVAL), e.
    zval: list[float] = field(default_factory=list)
    #: VASP version string from the generator / OUTCAR header.
    vasp_version: str | None = None

    # --- structure --------------------------------------------------------------------
    #: element symbol per site, final structure order.
    species: list[str] = field(default_factory=list)
    #: (3, 3) row vectors, Å, of the final structure.
    lattice: np.ndarray | None = None
    #: (nsites, 3) fractional coordinates of the final structure.
    frac_coords: np.ndarray | None = None
    #: the same for the initial structure (when read).
    initial_lattice: np.ndarray | None = None
    initial_frac_coords: np.ndarray | None = None
    #: (nsites, 3) final forces, eV/Å; (3, 3) final stress, kBar.
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None

    # --- energies and convergence -----------------------------------------------------
    #: free energy TOTEN (e_fr_energy) of the final ionic step, eV.
    final_energy: float | None = None
    #: energy(sigma->0) (e_0_energy) of the final ionic step, eV.
    final_energy_sigma0: float | None = None
    #: e_fr_energy per ionic step, eV.
    ionic_energies: list[float] = field(default_factory=list)
    #: number of electronic steps per ionic step.
    electronic_steps: list[int] = field(default_factory=list)
    #: True when the file ends properly (vasprun has </modeling>, OUTCAR its timing block).
    complete: bool = False
    #: the final SCF reached EDIFF within NELM steps.
    electronic_converged: bool = False
    #: relaxations: stopped before NSW with forces/energy within EDIFFG; statics: True.
    ionic_converged: bool = False
    #: human-readable reasons why the run is not usable as-is (truncated, unconverged, ...).
    problems: list[str] = field(default_factory=list)

    # --- electronic structure ---------------------------------------------------------
    efermi: float | None = None
    #: (nkpts, 3) fractional k-points and (nkpts,) weights.
    kpoints: np.ndarray | None = None
    kpoint_weights: np.ndarray | None = None
    #: KPOINTS generation: {"style": "Gamma"|"Monkhorst-Pack"|..., "mesh": [n1, n2, n3]}.
    kpoint_generation: dict[str, Any] | None = None
    #: (nspin, nkpts, nbands) eigenvalues, eV, and occupations (0..1).
    eigenvalues: np.ndarray | None = None
    occupations: np.ndarray | None = None
    #: (nedos,) DOS energy grid, eV; (nspin, nedos) total DOS, states/eV.
    dos_energies: np.ndarray | None = None
    total_dos: np.ndarray | None = None
    #: (nsites, nspin, norb, nedos) site- and orbital-projected DOS, only when asked for.
    pdos: np.ndarray | None = None
    #: orbital labels of the last pdos axis, e.g. ["s", "py", "pz", "px", "dxy", ...].
    pdos_orbitals: list[str] | None = None

    # --- magnetism --------------------------------------------------------------------
    #: (nsites,) total site moments from the last OUTCAR "magnetization (x)" table, μB.
    site_moments: np.ndarray | None = None
    #: (nsites, norb) the same table's orbital columns (s, p, d[, f]).
    site_moments_orbital: np.ndarray | None = None
    site_moments_orbitals: list[str] | None = None
    #: total moment of the cell: from OSZICAR/OUTCAR "number of electron ... magnetization"
    #: or from occupations, μB.
    total_moment: float | None = None
    #: 1-based ionic step of the magnetization table read, and why it is not the last one.
    moments_step: int | None = None
    moments_note: str | None = None
    #: quantity -> why it could not be read (e.g. "eigenvalues": "not available (no
    #: vasprun.xml; the OUTCAR prints none)"); the analysis shows these instead of a value.
    unavailable: dict[str, str] = field(default_factory=dict)
    #: field -> (file it was read from, 1-based ionic step), where the reader knows them.
    origins: dict[str, tuple[Path, int | None]] = field(default_factory=dict)

    # --- helpers ----------------------------------------------------------------------
    @property
    def nsites(self) -> int:
        return len(self.species)

    @property
    def ispin(self) -> int:
        return int(self.parameters.get("ISPIN", 1))

    @property
    def converged(self) -> bool:
        return self.complete and self.electronic_converged and self.ionic_converged

    def blocks(self) -> list[tuple[str, int]]:
        """Species blocks: as read, or consecutive runs of one element in ``species``."""
        if self.species_blocks and sum(n for _, n in self.species_blocks) == len(self.species):
            return list(self.species_blocks)
        out: list[tuple[str, int]] = []
        for el in self.species:
            if out and out[-1][0] == el:
                out[-1] = (el, out[-1][1] + 1)
            else:
                out.append((el, 1))
        return out

    def cart_coords(self) -> np.ndarray:
        """(nsites, 3) Cartesian coordinates of the final structure, Å."""
        if self.lattice is None or self.frac_coords is None:
            raise ValueError(f"{self.path}: no final structure was read")
        return np.asarray(self.frac_coords) @ np.asarray(self.lattice)

    def to_structure(self):  # -> pymatgen Structure; imported lazily (slow import)
        """The final structure as a pymatgen ``Structure`` (with ``magmom`` if known)."""
        from pymatgen.core import Lattice, Structure

        if self.lattice is None or self.frac_coords is None:
            raise ValueError(f"{self.path}: no final structure was read")
        props = {}
        if self.site_moments is not None:
            props["magmom"] = [float(m) for m in self.site_moments]
        return Structure(
            Lattice(self.lattice), self.species, self.frac_coords, site_properties=props or None
        )
