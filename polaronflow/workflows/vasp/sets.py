"""VASP input sets for the paper's SCAN+U campaign (atomate2 ``VaspInputGenerator``).

The parameters live in ``polaronflow/templates/scan_u_incar.yaml`` (one comment per tag: paper
or our choice). :class:`ScanUSetGenerator` builds its configuration from that file instead of
atomate2's base set, so none of atomate2's defaults leak in (``GGA = PS``, Materials Project
``LDAUU`` 6.2 eV on W, 5 μB on every W, ``ENCUT`` 680, ``auto_ismear``).

k-points: a Γ-centred mesh ``n_i = max(1, round(L / |a_i|))`` with ``L`` = 30 Å by default
(:func:`kpoint_mesh`). It gives Γ 2×2×2 for the 256-atom 2×2×2 WO3 supercell (the paper's
mesh, |a_i| ≈ 14.6–15.4 Å) and Γ 4×4×4 for the 32-atom cell (|a_i| ≈ 7.3–7.7 Å); any L in
26.9–32.8 Å gives both. A structure with ``properties["molecule"] = True`` gets Γ only.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from atomate2.vasp.sets.base import VaspInputGenerator
from pymatgen.io.vasp import Poscar

from polaronflow.errors import ConfigError, WorkflowError

if TYPE_CHECKING:
    from pymatgen.core import Structure
    from pymatgen.io.vasp import Kpoints, VaspInput

#: The parameter file shipped with polaronflow.
PARAMETERS_FILE = Path(__file__).resolve().parents[2] / "templates" / "scan_u_incar.yaml"

_REQUIRED_SECTIONS = (
    "base",
    "relax",
    "static",
    "doped",
    "hubbard",
    "default_magmom",
    "potcar",
    "potcar_functional",
    "kpoints",
)


@functools.lru_cache(maxsize=8)
def _load_parameters_cached(path: str, mtime: float) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"INCAR parameter file {path} is not readable YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"INCAR parameter file {path} must hold a mapping of sections")
    missing = [s for s in _REQUIRED_SECTIONS if s not in data]
    if missing:
        raise ConfigError(
            f"INCAR parameter file {path} lacks section(s) {', '.join(missing)}; "
            f"expected {', '.join(_REQUIRED_SECTIONS)}"
        )
    return data


def load_parameters(path: str | Path | None = None) -> dict[str, Any]:
    """Load the campaign's VASP parameters from a YAML file.

    Parameters
    ----------
    path
        A parameter file laid out like ``templates/scan_u_incar.yaml``; default that file.

    Returns
    -------
    dict
        A fresh (deep-copied) mapping of the sections ``base``, ``relax``, ``static``,
        ``doped``, ``hubbard``, ``default_magmom``, ``potcar``, ``potcar_functional``,
        ``kpoints``.

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, or lacks a section.
    """
    p = Path(path) if path is not None else PARAMETERS_FILE
    if not p.is_file():
        raise ConfigError(f"INCAR parameter file {p} does not exist")
    return copy.deepcopy(_load_parameters_cached(str(p.resolve()), p.stat().st_mtime))


def kpoint_mesh(structure: Structure, length: float) -> tuple[int, int, int]:
    """Return the Γ-centred mesh ``n_i = max(1, round(length / |a_i|))``.

    Parameters
    ----------
    structure
        The cell; its ``properties["molecule"]`` is not looked at here.
    length
        The real-space length L (Å); a larger L gives a denser mesh.

    Returns
    -------
    tuple of int
        Subdivisions along the three reciprocal lattice vectors.
    """
    if not (math.isfinite(length) and length > 0):
        raise WorkflowError(f"k-point length must be a positive number of Å, got {length!r}")
    return tuple(max(1, round(length / a)) for a in structure.lattice.abc)  # type: ignore[return-value]


def is_molecule(structure: Structure) -> bool:
    """Whether a structure is a molecule in a box (``properties["molecule"]`` is true)."""
    return bool(getattr(structure, "properties", {}).get("molecule", False))


def species_blocks(structure: Structure) -> list[str]:
    """Element symbols in POSCAR order (one per block of consecutive equal species)."""
    return [sym for sym, _ in itertools.groupby(site.specie.symbol for site in structure)]


#: Per-structure work shared by the input sets made inside :func:`shared_structure_work`.
_SHARED_WORK: contextvars.ContextVar[dict[Any, tuple[Any, Any]] | None] = contextvars.ContextVar(
    "polaronflow_shared_structure_work", default=None
)


@contextlib.contextmanager
def shared_structure_work() -> Iterator[None]:
    """Share, inside the block, what input sets compute from the same ``Structure`` object.

    The default-``magmom`` copy, the POSCAR and the species blocks depend only on the
    structure, so the U-ramp steps and the static of one system (one start structure) build
    them once instead of once per job. Entries are keyed by object identity (each holds a
    reference to its structure, so an id cannot be reused inside the block); the cache is
    dropped when the block ends.

    Only for callers that, inside the block, change neither a structure they pass nor the
    POSCAR of an input set they get back (the dry run writes the files and discards them).
    """
    token = _SHARED_WORK.set({})
    try:
        yield
    finally:
        _SHARED_WORK.reset(token)


def _shared(key: Any, owner: object, build: Callable[[], Any]) -> Any:
    """``build()``, or its result for the same ``owner`` object (a structure or a POSCAR)
    inside :func:`shared_structure_work`."""
    cache = _SHARED_WORK.get()
    if cache is None:
        return build()
    full_key = (key, id(owner))
    hit = cache.get(full_key)
    if hit is not None and hit[0] is owner:
        return hit[1]
    value = build()
    cache[full_key] = (owner, value)
    return value


def _potcar_map(params: dict[str, Any]) -> dict[str, str]:
    # pymatgen's SCAN set decides for every element the paper does not cover.
    from pymatgen.io.vasp.sets import MPScanRelaxSet

    mapping = dict(MPScanRelaxSet.CONFIG["POTCAR"])
    mapping.update(params["potcar"])
    return mapping


@dataclass
class ScanUSetGenerator(VaspInputGenerator):
    """Input sets of the paper's SCAN+U method (relaxation or static).

    Parameters
    ----------
    calc
        ``"relax"`` (NSW, IBRION, EDIFFG, ISIF from the ``relax`` section) or ``"static"``
        (NSW 0, NEDOS, LCHARG from the ``static`` section).
    hubbard_u
        U (eV) per element, e.g. ``{"W": 9.0}``; None takes the parameter file's production U.
        LDAU tags are written only when one of these elements is in the structure.
    isif
        ISIF of a relaxation; None takes the parameter file's (3).
    nupdown
        Fixed NUPDOWN (μB); None leaves the total moment free.
    doped
        Add the ``doped`` section (ISYM 0) for cells with a dopant and polaron seeds.
    lwave
        Write WAVECAR (the ramp hands it to the next step).
    fresh_start
        Start from scratch whatever files lie in the run folder: ``ISTART = 0`` (no WAVECAR
        read, so MAGMOM acts) and ``ICHARG = 2`` (charge from atomic densities), written
        explicitly. Used by the re-seeded retry of a delocalised ramp step.
    kpoint_length
        L (Å) of :func:`kpoint_mesh`; None takes the parameter file's.
    kpoint_mesh
        An explicit Γ-centred mesh, overriding ``kpoint_length``.
    molecule
        Γ only (a molecule in a box); None reads ``structure.properties["molecule"]``, which
        a relaxed structure from a previous run no longer carries.
    parameters_file
        A parameter YAML other than the shipped one.
    potcar_overrides
        POTCAR symbols per element that replace the parameter file's (e.g. ``{"Mg": "Mg"}``).
    """

    calc: Literal["relax", "static"] = "relax"
    hubbard_u: dict[str, float] | None = None
    isif: int | None = None
    nupdown: int | None = None
    doped: bool = False
    lwave: bool = False
    fresh_start: bool = False
    kpoint_length: float | None = None
    kpoint_mesh: tuple[int, int, int] | None = None
    molecule: bool | None = None
    parameters_file: str | None = None
    potcar_overrides: dict[str, str] = field(default_factory=dict)
    # Built from parameters_file + potcar_overrides on every construction (also by
    # dataclasses.replace), never passed in, so it cannot go stale.
    config_dict: dict = field(default_factory=dict, init=False)
    # atomate2 would pick ISMEAR -5 / 2 from a previous band gap: never for polaron cells.
    auto_ismear: bool = False
    # Custodian fixes or a previous step's tags must not leak into the next step.
    inherit_incar: bool = False
    auto_ispin: bool = False
    auto_metal_kpoints: bool = False
    force_gamma: bool = True

    def __post_init__(self) -> None:
        if self.calc not in ("relax", "static"):
            raise WorkflowError(f"calc must be 'relax' or 'static', got {self.calc!r}")
        params = load_parameters(self.parameters_file)
        if self.hubbard_u is not None:
            for el, u in self.hubbard_u.items():
                if not (isinstance(u, int | float) and math.isfinite(u) and u >= 0):
                    raise WorkflowError(f"U for {el} must be a finite number >= 0 eV, got {u!r}")
        if self.nupdown is not None and (not float(self.nupdown).is_integer() or self.nupdown < 0):
            raise WorkflowError(f"NUPDOWN must be a non-negative integer, got {self.nupdown!r}")
        if self.kpoint_mesh is not None:
            mesh = tuple(int(n) for n in self.kpoint_mesh)
            if len(mesh) != 3 or min(mesh) < 1:
                raise WorkflowError(
                    f"k-point mesh must be three integers >= 1, got {self.kpoint_mesh!r}"
                )
            self.kpoint_mesh = mesh  # type: ignore[assignment]
        incar = dict(params["base"])
        # An empty MAGMOM entry makes pymatgen take each site's `magmom` property.
        incar["MAGMOM"] = {}
        potcars = _potcar_map(params)
        potcars.update(self.potcar_overrides)
        self.config_dict = {
            "INCAR": incar,
            "KPOINTS": {},
            "POTCAR": potcars,
            "POTCAR_FUNCTIONAL": params["potcar_functional"],
        }
        self._params = params
        super().__post_init__()

    # ------------------------------------------------------------------ INCAR
    @property
    def incar_updates(self) -> dict[str, Any]:
        """INCAR tags on top of the ``base`` section: calc type, ISIF, U, NUPDOWN, ..."""
        params = self._params
        updates: dict[str, Any] = dict(params[self.calc])
        if self.calc == "relax" and self.isif is not None:
            updates["ISIF"] = self.isif
        if self.doped:
            updates.update(params["doped"])
        if self.lwave:
            updates["LWAVE"] = True
        if self.fresh_start:
            updates["ISTART"] = 0
            updates["ICHARG"] = 2
        if self.nupdown is not None:
            updates["NUPDOWN"] = int(self.nupdown)
        updates.update(self._hubbard_tags())
        return updates

    def _hubbard_tags(self) -> dict[str, Any]:
        hub = self._params["hubbard"]
        u_map = dict(hub["U"]) if self.hubbard_u is None else dict(self.hubbard_u)
        structure = self.structure
        blocks = self._per_structure("blocks", species_blocks) if structure is not None else []
        if not any(el in u_map for el in blocks):
            # No U element (MgO, Mg, O2): no LDAU tag at all, not even LDAU = .FALSE.
            return {k: None for k in ("LDAU", "LDAUTYPE", "LDAUL", "LDAUU", "LDAUJ")}
        l_map, j_map = hub.get("L", {}), hub.get("J", {})
        return {
            "LDAU": True,
            "LDAUTYPE": hub["LDAUTYPE"],
            "LDAUL": [int(l_map.get(el, 2)) if el in u_map else -1 for el in blocks],
            "LDAUU": [float(u_map.get(el, 0.0)) for el in blocks],
            "LDAUJ": [float(j_map.get(el, 0.0)) for el in blocks],
        }

    # ---------------------------------------------------------------- KPOINTS
    def mesh_for(self, structure: Structure) -> tuple[int, int, int]:
        """The Γ-centred mesh this generator writes for ``structure``."""
        molecule = is_molecule(structure) if self.molecule is None else self.molecule
        if molecule:
            return tuple(self._params["kpoints"]["molecule_mesh"])  # type: ignore[return-value]
        if self.kpoint_mesh is not None:
            return tuple(self.kpoint_mesh)  # type: ignore[return-value]
        length = self.kpoint_length or float(self._params["kpoints"]["length"])
        return kpoint_mesh(structure, length)

    @property
    def kpoints_updates(self) -> Kpoints:
        """A Γ-centred mesh from :meth:`mesh_for`."""
        from pymatgen.io.vasp import Kpoints

        mesh = self.mesh_for(self.structure)
        kpts = Kpoints.gamma_automatic(mesh)
        kpts.comment = f"polaronflow Gamma-centred {mesh[0]}x{mesh[1]}x{mesh[2]}"
        return kpts

    # -------------------------------------------------------------- structure
    @property
    def poscar(self) -> Poscar:
        """POSCAR of the structure, without the site properties POSCAR does not use.

        pymatgen's POSCAR writer re-collects every site property once per site (quadratic in
        the number of atoms) and the input set asks for the POSCAR twice; for a 256-atom cell
        with the polaron bookkeeping properties (``magmom`` — already in the INCAR —
        ``dopant``, ``polaron_seed``) that made most of the time of a dry run. The POSCAR is
        built once per :meth:`get_input_set` call, and once per structure inside a caller's
        :func:`shared_structure_work`.
        """
        if self.structure is None:
            raise WorkflowError("no structure is associated with the input set")
        return self._per_structure("poscar", _lean_poscar)

    def _per_structure(self, kind: str, build: Callable[[Structure], Any]) -> Any:
        """``build(self.structure)``, computed once per structure inside
        :func:`shared_structure_work` (which every :meth:`get_input_set` call opens)."""
        s = self.structure
        return _shared(kind, s, lambda: build(s))

    def get_input_set(
        self,
        structure: Structure | None = None,
        prev_dir: str | Path | None = None,
        potcar_spec: bool = False,
    ) -> VaspInput:
        """Return the VASP input; sites without ``magmom`` get the documented default.

        Parameters
        ----------
        structure
            The structure; its ``magmom`` site property (polaron seeds, or the previous
            run's moments) becomes MAGMOM.
        prev_dir
            A previous run folder (atomate2 passes it for chained jobs).
        potcar_spec
            Write POTCAR symbols (POTCAR.spec) instead of a POTCAR.

        Returns
        -------
        pymatgen.io.vasp.VaspInput
            INCAR, KPOINTS, POSCAR and POTCAR (or its spec).
        """
        if _SHARED_WORK.get() is None:
            # The structure is fixed while one input set is made: its POSCAR and species
            # blocks (asked for several times) are computed once per call.
            with shared_structure_work():
                return self.get_input_set(structure, prev_dir=prev_dir, potcar_spec=potcar_spec)
        if structure is not None:
            defaults = self._params["default_magmom"]
            given = structure
            structure = _shared(
                ("magmom", repr(sorted(defaults.items()))),
                given,
                lambda: with_default_magmom(given, defaults),
            )
        return super().get_input_set(structure, prev_dir=prev_dir, potcar_spec=potcar_spec)


class _LeanPoscar(Poscar):
    """A Poscar whose ``selective_dynamics`` is computed once, not once per written site."""

    _selective_dynamics = None

    @property
    def selective_dynamics(self):
        return self._selective_dynamics

    @selective_dynamics.setter
    def selective_dynamics(self, value) -> None:
        self._selective_dynamics = value
        self.structure.add_site_property("selective_dynamics", value)

    def get_str(
        self, direct: bool = True, vasp4_compatible: bool = False, significant_figures: int = 16
    ) -> str:
        """The POSCAR text; formatted once inside :func:`shared_structure_work` (where this
        POSCAR is shared by the input sets of one structure and not changed)."""
        return _shared(
            ("poscar-text", direct, vasp4_compatible, significant_figures),
            self,
            lambda: super(_LeanPoscar, self).get_str(
                direct=direct,
                vasp4_compatible=vasp4_compatible,
                significant_figures=significant_figures,
            ),
        )


def _lean_poscar(structure: Structure) -> Poscar:
    from pymatgen.core import Structure

    kept = {
        k: v
        for k, v in structure.site_properties.items()
        if k in ("selective_dynamics", "velocities", "predictor_corrector")
    }
    bare = Structure(
        structure.lattice,
        structure.species,
        structure.frac_coords,
        site_properties=kept or None,
        properties=dict(structure.properties),
    )
    poscar = _LeanPoscar(
        bare,
        velocities=kept.get("velocities"),
        predictor_corrector=kept.get("predictor_corrector"),
        predictor_corrector_preamble=structure.properties.get("predictor_corrector_preamble"),
        lattice_velocities=structure.properties.get("lattice_velocities"),
    )
    poscar._selective_dynamics = kept.get("selective_dynamics")
    return poscar


def with_default_magmom(structure: Structure, defaults: dict[str, float]) -> Structure:
    """Return ``structure`` with a ``magmom`` site property, filling only what is missing.

    Parameters
    ----------
    structure
        The structure; an existing ``magmom`` (seeds, previous moments) is kept.
    defaults
        μB per element symbol and a ``default`` for every other element.

    Returns
    -------
    Structure
        A copy when moments had to be added, else the structure itself.
    """
    current = structure.site_properties.get("magmom")
    if current is not None and all(m is not None for m in current):
        return structure
    fallback = float(defaults.get("default", 0.0))
    moments = [
        float(defaults.get(site.specie.symbol, fallback))
        if (current is None or current[i] is None)
        else current[i]
        for i, site in enumerate(structure)
    ]
    new = structure.copy()
    new.add_site_property("magmom", moments)
    return new
