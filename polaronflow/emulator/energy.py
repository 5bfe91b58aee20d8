"""The emulator's energy landscape: configuration, spin, functional, ENCUT and geometry terms.

The total energy the emulator writes for a run is

    E = E_composition(U)                       scenario host/dopant/reference energies
      + sum_p [E_loc(U) + E_bind(d_p)]         per polaron p (d_p: distance to nearest dopant)
      + sum_{p<q} [E_rep(r_pq) + J s_p s_q e^(-r_pq / pair_length)]   per polaron pair
      + E_band                                 band-energy cost of a NUPDOWN-forced filling
      + E_moment                               references: moment away from the ground moment
      + N_atoms * (functional shift + ENCUT basis error)
      + 1/2 k sum_i |u_i|^2                    geometry away from the relaxed positions

with E_loc(U) = -localisation_slope * (U - critical_u), E_bind(d) = -binding_energy *
exp(-d / binding_length) and E_rep(r) = pair_repulsion * exp(-r / pair_length). Only the
second and third lines depend on *which* W carry polarons and with which spins:
:func:`configuration_energy` returns them, and :func:`rank_configurations` enumerates every
choice of W sites and spins for a cell, so a scenario's ground state is the first entry it
returns (the delocalised state, with zero configuration energy, is ranked with them).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from polaronflow.emulator.inputs import JobInputs
from polaronflow.emulator.scenario import Scenario
from polaronflow.errors import InputError


def min_image_dist(lattice: np.ndarray, frac: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Minimum-image distances (Å) from fractional ``point`` to each row of ``frac``."""
    d = frac - point
    d -= np.round(d)
    return np.linalg.norm(d @ lattice, axis=1)


def functional_of(incar: dict) -> str:
    """The functional an INCAR selects: METAGGA if set, else GGA (PE -> PBE, PS -> PBESOL)."""
    meta = str(incar.get("METAGGA", "")).strip().upper()
    if meta and meta not in ("NONE", "-", "F", ".FALSE."):
        return meta
    gga = str(incar.get("GGA", "PE")).strip().upper()
    return {"PE": "PBE", "PS": "PBESOL", "--": "PBE"}.get(gga, gga)


def functional_and_encut(inputs: JobInputs, scenario: Scenario) -> float:
    """Per-atom functional shift and ENCUT basis error, times the atom count (eV)."""
    model = scenario.energy
    name = functional_of(inputs.incar)
    shifts = {k.upper(): v for k, v in model.functional_shift.items()}
    if name not in shifts:
        raise InputError(
            f"scenario {scenario.name!r} has no energy for functional {name!r} (from the INCAR "
            f"in {inputs.directory}); it knows: {', '.join(sorted(shifts))}"
        )
    shift = shifts[name] - shifts.get(model.functional.upper(), 0.0)
    encut = float(inputs.incar.get("ENCUT", model.encut.default_encut))
    basis = model.encut.amplitude * math.exp(-encut / model.encut.decay)
    return inputs.natoms * (shift + basis)


def configuration_energy(
    inputs,
    scenario: Scenario,
    sites: list[int],
    signs: list[float],
    u: float | None = None,
) -> float:
    """Energy of polarons on W ``sites`` with spins ``signs`` (eV), relative to delocalised.

    Parameters
    ----------
    inputs
        The job (:class:`~polaronflow.emulator.inputs.JobInputs`: cell, species; U read from
        its INCAR unless ``u`` is given) or a pymatgen ``Structure`` (then ``u`` is required),
        e.g. a finished run's CONTCAR.
    scenario
        The physics (dopant parameters).
    sites, signs
        Polaron W site indices (from 0) and their spin signs (+1/-1).
    u
        U on W d (eV); default the job's.

    Returns
    -------
    float
        The configuration part of the total energy (see module docstring).
    """
    if hasattr(inputs, "sites"):  # a pymatgen Structure
        if u is None:
            raise InputError("configuration_energy of a Structure needs the U on W d (u=...)")
        species = np.asarray([site.specie.symbol for site in inputs])
        lat, frac = inputs.lattice.matrix, inputs.frac_coords
    else:
        u = inputs.u_on_w if u is None else u
        species = np.asarray(inputs.species)
        lat, frac = inputs.lattice, inputs.frac_coords
    dop = np.flatnonzero(np.isin(species, list(scenario.dopants)))
    if len(dop) == 0 or not sites:
        return 0.0
    energy = 0.0
    phys_of = []
    for site in sites:
        d = min_image_dist(lat, frac[dop], frac[site])
        nearest = int(np.argmin(d))
        phys = scenario.dopants[str(species[dop[nearest]])]
        phys_of.append(phys)
        if phys.critical_u is not None:
            energy -= phys.localisation_slope * (u - phys.critical_u)
        energy -= phys.binding_energy * math.exp(-float(d[nearest]) / phys.binding_length)
    for (i, a), (j, b) in itertools.combinations(enumerate(sites), 2):
        r = float(min_image_dist(lat, frac[[b]], frac[a])[0])
        # the pair terms of the two polarons' dopant kinds, averaged
        rep = 0.5 * sum(
            p.pair_repulsion * math.exp(-r / p.pair_length) for p in (phys_of[i], phys_of[j])
        )
        ex = 0.5 * sum(
            p.pair_exchange * math.exp(-r / p.pair_length) for p in (phys_of[i], phys_of[j])
        )
        energy += rep + ex * signs[i] * signs[j]
    return energy


def rank_configurations(
    inputs: JobInputs,
    scenario: Scenario,
    n_polarons: int | None = None,
    u: float | None = None,
    nupdown: float | None = None,
    limit: int = 20,
) -> list[tuple[float, tuple[int, ...], tuple[float, ...]]]:
    """Every polaron configuration of a cell ranked by configuration energy (lowest first).

    Enumerates all choices of ``n_polarons`` W sites (default: the dopants' electrons) and,
    for each, every spin arrangement (the first polaron up; with ``nupdown`` only those whose
    spin sum matches it), plus the delocalised state ``((), ())`` with energy 0. The first
    entry is the scenario's ground state for that cell and U; the emulator writes, for the
    same cell and INCAR, total energies that differ by exactly these configuration energies
    (as long as the geometry, functional, ENCUT and band filling are the same).

    Parameters
    ----------
    inputs
        The job (a folder read with :func:`polaronflow.emulator.inputs.read_job`).
    scenario
        The physics.
    n_polarons
        Polarons per configuration; default the electrons the dopants give.
    u
        U on W d (eV); default the job's. Below a dopant's critical U no polaron is stable.
    nupdown
        Keep only spin arrangements with this spin sum.
    limit
        Entries returned.

    Returns
    -------
    list of (energy, sites, signs)
        Sorted by energy, then sites.
    """
    species = np.asarray(inputs.species)
    u = inputs.u_on_w if u is None else u
    if n_polarons is None:
        n_polarons = sum(scenario.dopants[el].electrons for el in species if el in scenario.dopants)
    w_sites = [int(i) for i in np.flatnonzero(species == "W")]
    out: list[tuple[float, tuple[int, ...], tuple[float, ...]]] = [(0.0, (), ())]
    if math.comb(len(w_sites), n_polarons) * 2 ** max(n_polarons - 1, 0) > 2_000_000:
        raise InputError(
            f"{n_polarons} polarons on {len(w_sites)} W: too many configurations to enumerate"
        )
    for sites in itertools.combinations(w_sites, n_polarons):
        if not sites:
            continue
        for rest in itertools.product((1.0, -1.0), repeat=n_polarons - 1):
            signs = (1.0, *rest)
            if nupdown is not None and abs(abs(sum(signs)) - nupdown) > 1e-9:
                continue
            e = configuration_energy(inputs, scenario, list(sites), list(signs), u)
            out.append((e, sites, signs))
    out.sort(key=lambda t: (round(t[0], 12), t[1]))
    return out[:limit]


def symmetrised(
    lattice: np.ndarray,
    frac: np.ndarray,
    species: list[str],
    symprec: float,
    framework: set[str] | None = None,
    displaced: set[int] | frozenset[int] = frozenset(),
    max_ops: int = 96,
) -> np.ndarray:
    """Positions averaged over their symmetry images (spglib at ``symprec``, Å).

    The symmetry is that of the ``framework`` elements (default: all; a dopant that lowers the
    symmetry of the cell is left out, as the emulator does not relax the framework around
    it). Atoms in ``displaced`` (the O stretched around a polaron W) are not used as sources:
    their reference position comes from symmetry-equivalent atoms that are not displaced, so
    a stretch already present is recognised and not applied twice. A displacement that breaks
    the framework's symmetry within ``symprec`` (a rattle) averages out. At most ``max_ops``
    operations are used (evenly spread): images of undisplaced atoms land exactly on the
    symmetric position, so a subset keeps symmetric structures exact.
    """
    import spglib

    keep = np.array([framework is None or el in framework for el in species])
    idx = np.flatnonzero(keep)
    numbers = np.unique(species, return_inverse=True)[1]
    sym = spglib.get_symmetry((lattice, frac[idx], numbers[idx]), symprec=symprec)
    out = frac.copy()
    if not sym or len(sym["rotations"]) <= 1 or len(idx) == 0:
        return out
    rots, trans = sym["rotations"], sym["translations"]
    step = max(1, len(rots) // max_ops)
    sub = frac[idx]
    nums = numbers[idx]
    source_ok = np.array([int(i) not in displaced for i in idx])
    acc = np.zeros_like(sub)
    count = np.zeros(len(sub))
    for rot, tr in zip(rots[::step], trans[::step], strict=True):
        mapped = sub @ rot.T + tr
        d = mapped[:, None, :] - sub[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ lattice, axis=2)
        dist[nums[:, None] != nums[None, :]] = np.inf
        target = np.argmin(dist, axis=1)
        rows = np.arange(len(sub))
        ok = (dist[rows, target] <= 2 * symprec) & source_ok
        img = sub[target] + d[rows, target]  # the image, next to the atom it lands on
        np.add.at(acc, target[ok], img[ok])
        np.add.at(count, target[ok], 1)
    has = count > 0
    sub_out = sub.copy()
    sub_out[has] = acc[has] / count[has, None]
    out[idx] = sub_out
    return out


def harmonic_energy(lattice: np.ndarray, frac: np.ndarray, relaxed: np.ndarray, k: float) -> float:
    """``0.5 * k * sum |u_i|^2`` for the displacement u from ``relaxed`` (eV)."""
    d = frac - relaxed
    d -= np.round(d)
    return 0.5 * k * float(np.sum((d @ lattice) ** 2))
