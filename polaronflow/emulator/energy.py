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
    inputs: JobInputs,
    scenario: Scenario,
    sites: list[int],
    signs: list[float],
    u: float | None = None,
) -> float:
    """Energy of polarons on W ``sites`` with spins ``signs`` (eV), relative to delocalised.

    Parameters
    ----------
    inputs
        The job (cell, species; U read from its INCAR unless ``u`` is given).
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
    u = inputs.u_on_w if u is None else u
    species = np.asarray(inputs.species)
    dop = np.flatnonzero(np.isin(species, list(scenario.dopants)))
    if len(dop) == 0 or not sites:
        return 0.0
    lat, frac = inputs.lattice, inputs.frac_coords
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
        n_polarons = sum(
            scenario.dopants[el].electrons for el in species if el in scenario.dopants
        )
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


def symmetrised(lattice: np.ndarray, frac: np.ndarray, species: list[str], symprec: float):
    """Positions averaged over the space-group images found by spglib at ``symprec`` (Å).

    A displacement that breaks a symmetry the cell has within ``symprec`` (a rattle) averages
    out; displacements that keep the symmetry, or exceed the tolerance, stay.
    """
    import spglib

    numbers = np.unique(species, return_inverse=True)[1]
    sym = spglib.get_symmetry((lattice, frac, numbers), symprec=symprec)
    if not sym or len(sym["rotations"]) <= 1:
        return frac.copy()
    acc = np.zeros_like(frac)
    count = np.zeros(len(frac))
    for rot, trans in zip(sym["rotations"], sym["translations"], strict=True):
        mapped = frac @ rot.T + trans
        d = mapped[:, None, :] - frac[None, :, :]
        d -= np.round(d)
        dist = np.linalg.norm(d @ lattice, axis=2)
        dist[numbers[:, None] != numbers[None, :]] = np.inf
        target = np.argmin(dist, axis=1)
        ok = dist[np.arange(len(frac)), target] <= 2 * symprec
        # each image brought next to the atom it lands on
        img = frac[target] + d[np.arange(len(frac)), target]
        np.add.at(acc, target[ok], img[ok])
        np.add.at(count, target[ok], 1)
    out = frac.copy()
    has = count > 0
    out[has] = acc[has] / count[has, None]
    return out


def harmonic_energy(lattice: np.ndarray, frac: np.ndarray, relaxed: np.ndarray, k: float) -> float:
    """``0.5 * k * sum |u_i|^2`` for the displacement u from ``relaxed`` (eV)."""
    d = frac - relaxed
    d -= np.round(d)
    return 0.5 * k * float(np.sum((d @ lattice) ** 2))
