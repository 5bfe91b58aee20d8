"""The emulator's physics: from job inputs and a scenario to the numbers a VASP run would print.

Nothing here is computed from first principles. The numbers come from the scenario; what the
emulator adds is *consistency* and VASP's rules: polarons sit where the WAVECAR read leaves
them or, starting fresh, on the W sites seeded in MAGMOM (:mod:`.state`); below the critical U
they delocalise into the conduction band; occupations are smeared with the run's ISMEAR and
SIGMA and E-fermi is where they hold NELECT (one Fermi level per spin under NUPDOWN); the
occupied polaron level is a band in the polaron's spin channel; the projections put the in-gap
state on the polaron W d orbitals with weights equal to its moment; energies follow the
landscape of :mod:`.energy` and fall over the ionic steps to the relaxed one.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from polaronflow.emulator.energy import (
    configuration_energy,
    functional_and_encut,
    harmonic_energy,
    symmetrised,
)
from polaronflow.emulator.inputs import JobInputs, _truthy
from polaronflow.emulator.scenario import DopantPhysics, FaultSpec, ReferencePhysics, Scenario
from polaronflow.emulator.state import StartUp, startup
from polaronflow.errors import InputError

ORBITALS = ("s", "py", "pz", "px", "dxy", "dyz", "dz2", "dxz", "x2-y2")
_P = (1, 2, 3)
_D = (4, 5, 6, 7, 8)
_T2G = (4, 5, 7)
#: Typical valence charges (s, p, d) inside the PAW spheres, for the "total charge" table.
_CHARGES = {
    "W": (0.45, 6.25, 3.35),
    "O": (1.75, 4.15, 0.0),
    "Mg": (2.05, 5.90, 0.0),
    "H": (0.45, 0.0, 0.0),
}


@dataclass
class IonicStep:
    """One ionic step: structure, energies, forces, stress and SCF energies."""

    lattice: np.ndarray
    frac_coords: np.ndarray
    energy: float
    forces: np.ndarray
    stress: np.ndarray
    scf_energies: list[float]


@dataclass
class RunModel:
    """Everything the writers need for one emulated run."""

    system: str
    kind: str
    natoms: int
    nbands: int
    ispin: int
    steps: list[IonicStep]
    #: (nspin, nkpts, nbands)
    eigenvalues: np.ndarray
    occupations: np.ndarray
    #: projection group per (spin, kpt, band) and the (ngroups, natoms, 9) group patterns.
    groups: np.ndarray
    patterns: np.ndarray
    efermi: float
    site_moments: np.ndarray
    #: (natoms, 3) s, p, d parts of site moments and charges.
    moment_orbitals: np.ndarray
    charges: np.ndarray
    total_moment: float
    electronic_converged: bool
    polaron_sites: list[int] = field(default_factory=list)
    polaron_signs: list[float] = field(default_factory=list)
    free_electrons: int = 0
    reads_wavecar: bool = False
    #: VASP's EENTRO (-T S) of the final occupations (eV); the step energies are E(sigma->0),
    #: the free energy is E0 + EENTRO / 2 and the energy without entropy E0 - EENTRO / 2.
    eentropy: float = 0.0
    #: NBANDS in the INCAR cannot hold the electrons (VASP warns "TOO FEW BANDS").
    too_few_bands: bool = False
    relaxation: bool = False
    #: a relaxation that reached EDIFFG within NSW steps
    ionic_converged: bool = True
    u_on_w: float = 0.0
    notes: list[str] = field(default_factory=list)


def _seed(inputs: JobInputs) -> int:
    h = hashlib.sha256()
    h.update(" ".join(inputs.species).encode())
    h.update(np.round(inputs.frac_coords, 4).tobytes())
    return int.from_bytes(h.digest()[:4], "little")


def _min_image_dist(lattice: np.ndarray, frac: np.ndarray, point: np.ndarray) -> np.ndarray:
    d = frac - point
    d -= np.round(d)
    return np.linalg.norm(d @ lattice, axis=1)


def _min_image_vec(lattice: np.ndarray, frac: np.ndarray, point: np.ndarray) -> np.ndarray:
    d = frac - point
    d -= np.round(d)
    return d @ lattice


def classify(inputs: JobInputs, scenario: Scenario) -> tuple[str, str, list[str]]:
    """(kind, system label, dopant elements) of a job: host, doped or reference."""
    elements = set(inputs.species)
    if "W" in elements and "O" in elements:
        dopants = sorted(elements - {"W", "O"})
        unknown = [d for d in dopants if d not in scenario.dopants]
        if unknown:
            raise InputError(
                f"scenario {scenario.name!r} has no physics for dopant {', '.join(unknown)}; "
                f"it knows: {', '.join(sorted(scenario.dopants)) or 'none'}"
            )
        if not dopants:
            return "host", "host", []
        return "doped", "+".join(dopants), dopants
    from pymatgen.core import Composition

    formula = Composition("".join(inputs.species)).reduced_formula
    if formula not in scenario.references:
        raise InputError(
            f"scenario {scenario.name!r} has no physics for {formula!r}; references it "
            f"knows: {', '.join(sorted(scenario.references)) or 'none'}"
        )
    return "reference", formula, []


def default_nbands(nelect: float, natoms: int) -> int:
    """VASP's default NBANDS (collinear): max((NELECT+2)/2 + max(NIONS/2, 3), 0.6 NELECT)."""
    return int(max(math.ceil((nelect + 2) / 2) + max(natoms // 2, 3), int(0.6 * nelect)))


def _k_dispersion(kpts: np.ndarray) -> np.ndarray:
    """A non-negative band dispersion factor in [0, 1], zero at Gamma."""
    return np.sum(1.0 - np.cos(2 * np.pi * kpts), axis=1) / 6.0


def _rk(inputs: JobInputs) -> float:
    lengths = np.linalg.norm(inputs.lattice, axis=1)
    if inputs.kpoint_style == "Explicit":
        n = len(inputs.kpoints) ** (1 / 3)
        return float(n * lengths.mean())
    return float(min(d * length for d, length in zip(inputs.divisions, lengths, strict=True)))


def _target_lattice(inputs: JobInputs, scenario: Scenario, dopants: list[str]) -> np.ndarray:
    from pymatgen.core import Lattice

    host = scenario.host
    lat = Lattice(inputs.lattice)
    if host.cell_32 is None:
        return inputs.lattice.copy()
    a0, b0, c0, beta0 = host.cell_32
    mult = [max(1, round(x / (2 * host.pseudo_cubic))) for x in lat.abc]
    base = [n * x for n, x in zip(mult, (a0, b0, c0), strict=True)]
    alpha, beta_in, gamma = lat.angles
    if any(abs(x / y - 1) > 0.15 for x, y in zip(lat.abc, base, strict=True)):
        # Not a multiple of the 32-atom cell the scenario describes: keep the input cell and
        # apply only the doping response.
        base, beta0 = list(lat.abc), beta_in
    change = np.zeros(4)
    for d in dopants:
        lc = scenario.dopants[d].lattice_change
        change += np.array([lc.a, lc.b, lc.c, lc.beta])
    a, b, c = (x * (1 + dc / 100) for x, dc in zip(base, change[:3], strict=True))
    beta = beta0 * (1 + change[3] / 100)
    m0 = Lattice.from_parameters(*lat.abc, *lat.angles).matrix
    rot = np.linalg.solve(m0, inputs.lattice)  # keeps the input orientation
    return Lattice.from_parameters(a, b, c, alpha, beta, gamma).matrix @ rot


@dataclass
class _Polaron:
    site: int
    sign: float
    moment: float
    depth: float
    tails: list[int]
    oxygens: list[int]


def _in_plane_neighbours(inputs: JobInputs, w_sites: np.ndarray, centre: int) -> list[int]:
    vec = _min_image_vec(inputs.lattice, inputs.frac_coords[w_sites], inputs.frac_coords[centre])
    dist = np.linalg.norm(vec, axis=1)
    a_hat = inputs.lattice[0] / np.linalg.norm(inputs.lattice[0])
    ok = (dist > 0.5) & (dist < 4.4) & (np.abs(vec @ a_hat) < 1.2)
    order = np.argsort(dist[ok])
    return [int(i) for i in w_sites[ok][order][:4]]


def _oxygen_neighbours(inputs: JobInputs, o_sites: np.ndarray, centre: int) -> list[int]:
    d = _min_image_dist(inputs.lattice, inputs.frac_coords[o_sites], inputs.frac_coords[centre])
    order = np.argsort(d)
    return [int(o_sites[i]) for i in order[:6] if d[i] < 2.5]


def _polarons(
    inputs: JobInputs,
    scenario: Scenario,
    dopants: list[str],
    delocalise_u: float | None,
    start: StartUp,
) -> tuple[list[_Polaron], int, list[str]]:
    """Polarons of a doped run: (polarons, delocalised electrons, notes).

    Which W carry a polaron follows VASP's precedence: a run that reads a WAVECAR continues
    the state it holds and ignores MAGMOM; a run that starts without one localises the
    electrons on the W with the largest seeds (|MAGMOM| >= ``host.seed_threshold``). Below a
    dopant's critical U (or an injected ``delocalise`` fault's) every polaron delocalises.
    NUPDOWN then fixes the spins of the polarons as far as they can reach it.
    """
    notes: list[str] = [start.note]
    species = np.asarray(inputs.species)
    w_sites = np.flatnonzero(species == "W")
    o_sites = np.flatnonzero(species == "O")
    dop_sites = np.flatnonzero(np.isin(species, dopants))
    n_el = sum(scenario.dopants[species[i]].electrons for i in dop_sites)
    if n_el == 0:
        return [], 0, notes
    if inputs.ispin != 2:
        notes.append("ISPIN = 1: no spin polarisation, the dopant electrons stay delocalised")
        return [], n_el, notes
    u = inputs.u_on_w
    state = start.state if (start.state is not None and start.state.ispin == 2) else None
    if state is not None:
        w_set = {int(i) for i in w_sites}
        kept = [(s, sign) for s, sign in state.polarons if s in w_set][:n_el]
        chosen = [s for s, _ in kept]
        signs = [sign for _, sign in kept]
    else:
        if start.reads_wavecar:
            notes.append("no usable spin state in the WAVECAR: MAGMOM seeds the moments")
        magmom = inputs.magmom
        threshold = scenario.host.seed_threshold
        seeds = [int(i) for i in w_sites if abs(magmom[i]) >= threshold and magmom[i] != 0]
        seeds.sort(key=lambda i: (-abs(magmom[i]), i))
        chosen = seeds[:n_el]
        if len(seeds) > n_el:
            notes.append(f"{len(seeds)} seeds for {n_el} electrons: extra seeds stay empty")
        signs = [1.0 if magmom[i] > 0 else -1.0 for i in chosen]
    free = n_el - len(chosen)
    if free:
        notes.append(f"{free} electron(s) without a polaron go to the conduction band")
    thresholds = [scenario.dopants[d].critical_u for d in dopants] + [delocalise_u]
    if chosen and any(t is not None and u < t - 1e-9 for t in thresholds):
        notes.append(f"polarons delocalised at U = {u:g} eV (below the critical U)")
        return [], n_el, notes
    nupdown = inputs.incar.get("NUPDOWN")
    if nupdown is not None and float(nupdown) >= 0:
        # NUPDOWN fixes N_up - N_dn; the polaron spins follow as far as they can reach it
        # (the band filling does the rest: electrons promoted to the CB or holes in the VB).
        n = len(signs)
        n_up = min(n, max(0, math.floor((float(nupdown) + n) / 2 + 0.5)))
        for k in range(n - 1, -1, -1):
            ups = sum(1 for x in signs if x > 0)
            if ups > n_up and signs[k] > 0:
                signs[k] = -1.0
            elif ups < n_up and signs[k] < 0:
                signs[k] = 1.0
    out = []
    host_u_ref = scenario.host.u_reference
    for site, sign in zip(chosen, signs, strict=True):
        d = _min_image_dist(inputs.lattice, inputs.frac_coords[dop_sites], inputs.frac_coords[site])
        nearest = int(np.argmin(d))
        phys: DopantPhysics = scenario.dopants[species[dop_sites[nearest]]]
        shell = 1 + sum(1 for edge in phys.shell_edges if d[nearest] > edge)
        moment = phys.moments_by_shell[min(shell, len(phys.moments_by_shell)) - 1]
        moment += phys.moment_u_slope * (u - host_u_ref)
        depth = phys.ingap_depth + phys.ingap_shell_step * (shell - 1)
        depth += phys.ingap_u_slope * (u - host_u_ref)
        out.append(
            _Polaron(
                site=site,
                sign=sign,
                moment=max(moment, 0.0),
                depth=max(depth, 0.02),
                tails=_in_plane_neighbours(inputs, w_sites, site),
                oxygens=_oxygen_neighbours(inputs, o_sites, site),
            )
        )
    return out, free, notes


def _energy(inputs: JobInputs, scenario: Scenario, kind: str, system: str) -> float:
    counts = {el: inputs.species.count(el) for el in set(inputs.species)}
    u = inputs.u_on_w
    if kind == "reference":
        ref = scenario.references[system]
        from pymatgen.core import Composition

        comp = Composition("".join(inputs.species))
        n_fu = comp.num_atoms / Composition(system).num_atoms
        energy = n_fu * ref.energy_per_formula_unit
        if ref.kmesh is not None:
            energy += (
                inputs.natoms * ref.kmesh.amplitude * math.exp(-_rk(inputs) / ref.kmesh.length)
            )
        return energy
    host = scenario.host
    n_w, n_o = counts.get("W", 0), counts.get("O", 0)
    energy = n_w * (host.energy_per_formula_unit + host.energy_u_slope * (u - host.u_reference))
    if n_o != 3 * n_w:
        o2 = scenario.references.get("O2")
        mu_o = o2.energy_per_formula_unit / 2 if o2 else -4.9
        energy += (n_o - 3 * n_w) * mu_o
    for el, n in counts.items():
        if el in ("W", "O"):
            continue
        d = scenario.dopants[el]
        energy += n * (d.energy_per_dopant + d.energy_u_slope * (u - host.u_reference))
    return energy


def _patterns(inputs: JobInputs, polarons: list[_Polaron], metal: bool) -> np.ndarray:
    """(8 + npolarons, natoms, 9) projection patterns: 4 valence, 4 conduction variants."""
    species = np.asarray(inputs.species)
    n = inputs.natoms
    pats = np.zeros((8 + len(polarons), n, 9))
    rot = [(0.5, 0.3, 0.2), (0.2, 0.5, 0.3), (0.3, 0.2, 0.5), (0.34, 0.33, 0.33)]
    drot = [
        (0.3, 0.25, 0.1, 0.25, 0.1),
        (0.25, 0.3, 0.1, 0.25, 0.1),
        (0.25, 0.25, 0.1, 0.3, 0.1),
        (0.2, 0.2, 0.2, 0.2, 0.2),
    ]
    elements = sorted(set(inputs.species))
    for v in range(4):
        val = np.zeros((n, 9))
        con = np.zeros((n, 9))
        for el in elements:
            mask = species == el
            cnt = mask.sum()
            if el == "O":
                val[np.ix_(mask, _P)] = 0.75 / cnt * np.asarray(rot[v])
                con[np.ix_(mask, (0,))] = 0.05 / cnt
                con[np.ix_(mask, _P)] = 0.10 / cnt * np.asarray(rot[(v + 1) % 4])
            elif el == "W":
                val[np.ix_(mask, _D)] = 0.20 / cnt * np.asarray(drot[v])
                con[np.ix_(mask, _D)] = 0.80 / cnt * np.asarray(drot[(v + 2) % 4])
            else:
                s_val, p_val = (0.45, 0.45) if metal else (0.04, 0.02)
                val[np.ix_(mask, (0,))] = s_val / cnt
                val[np.ix_(mask, _P)] = p_val / cnt * np.asarray(rot[v])
                con[np.ix_(mask, (0,))] = 0.5 / cnt
                con[np.ix_(mask, _P)] = 0.3 / cnt * np.asarray(rot[v])
        for pat in (val, con):
            # Real projections are never exactly zero; a floor keeps every PDOS channel alive.
            pat += 2e-4 / max(n / 8, 1)
            total = pat.sum()
            if total > 0.95:
                pat *= 0.95 / total
        pats[v], pats[4 + v] = val, con
    for k, pol in enumerate(polarons):
        pat = pats[8 + k]
        m = pol.moment
        pat[pol.site, 5] = 0.8 * m
        pat[pol.site, 4] = pat[pol.site, 7] = 0.1 * m
        for t in pol.tails:
            pat[t, 5] += 0.04
        rest = max(0.0, 0.95 - pat.sum())
        for o in pol.oxygens:
            pat[o, list(_P)] += 0.5 * rest / max(len(pol.oxygens), 1) / 3
    return pats


def smearing_occupation(x: np.ndarray, ismear: int) -> np.ndarray:
    """VASP's occupation function of ``x = (e - E_F) / SIGMA`` for ISMEAR.

    ISMEAR = 0 (and the tetrahedron methods, for which the emulator uses a Gaussian of the
    given SIGMA): ``erfc(x) / 2``; ISMEAR = N > 0: Methfessel-Paxton of order N (order 1 and
    2 written out); ISMEAR = -1: Fermi-Dirac.
    """
    from scipy.special import erfc

    x = np.clip(x, -60.0, 60.0)
    if ismear == -1:
        return 1.0 / (1.0 + np.exp(x))
    f = 0.5 * erfc(x)
    if ismear >= 1:
        gauss = np.exp(-(x**2)) / np.sqrt(np.pi)
        # A_1 H_1 + A_2 H_3 terms of the Methfessel-Paxton expansion (PRB 40, 3616).
        f += -0.5 * x * gauss  # -(1/4) H_1(x) e^-x^2 / sqrt(pi), H_1 = 2x
        if ismear >= 2:
            f += (8 * x**3 - 12 * x) / 32.0 * gauss  # A_2 H_3, A_2 = 1/32
    return f


def _electrons(eig: np.ndarray, weights: np.ndarray, mu: float, sigma: float, ismear: int):
    occ = smearing_occupation((eig - mu) / sigma, ismear)
    return float(np.einsum("skb,k->", occ, weights))


def fermi_level(
    eig: np.ndarray,
    weights: np.ndarray,
    nelect: float,
    sigma: float,
    ismear: int,
    per_state: float = 1.0,
) -> float:
    """E-fermi where the smeared occupations hold ``nelect`` electrons.

    Inside a gap the electron count is flat; there VASP's bisection stops at the first energy
    where the count is within its tolerance, a few SIGMA above the highest occupied state
    (real MgO: VBM + 4.1 SIGMA). The emulator does the same: the lowest energy whose count is
    within 1e-7 of NELECT if the count is flat there, else the energy where it equals NELECT.
    """
    lo, hi = float(eig.min()) - 20 * sigma - 1.0, float(eig.max()) + 20 * sigma + 1.0
    tol = 1e-7
    nelect = nelect / per_state  # electrons per state: 2 without spin polarisation

    def bisect(pred) -> float:
        a, b = lo, hi  # pred(a) False, pred(b) True
        for _ in range(100):
            m = 0.5 * (a + b)
            if pred(m):
                b = m
            else:
                a = m
        return b

    # Methfessel-Paxton occupations overshoot 1 below E_F, so their count is not monotonic
    # near a band edge: locate E_F with the (monotonic) Gaussian count first, then refine it
    # on the run's own count where that brackets NELECT.
    gauss = 0 if ismear >= 1 else ismear
    low = bisect(lambda m: _electrons(eig, weights, m, sigma, gauss) >= nelect - tol)
    high = bisect(lambda m: _electrons(eig, weights, m, sigma, gauss) > nelect + tol)
    mu = (
        low
        if low <= high
        else bisect(lambda m: _electrons(eig, weights, m, sigma, gauss) >= nelect)
    )
    if gauss == ismear or abs(_electrons(eig, weights, mu, sigma, ismear) - nelect) <= tol:
        return mu
    a, b = mu - 1.5 * sigma, mu + 1.5 * sigma
    fa = _electrons(eig, weights, a, sigma, ismear) - nelect
    fb = _electrons(eig, weights, b, sigma, ismear) - nelect
    if fa * fb > 0:
        return mu
    for _ in range(80):
        m = 0.5 * (a + b)
        fm = _electrons(eig, weights, m, sigma, ismear) - nelect
        if fa * fm <= 0:
            b = m
        else:
            a, fa = m, fm
    return 0.5 * (a + b)


def _smearing(inputs: JobInputs) -> tuple[float, int]:
    ismear = int(inputs.incar.get("ISMEAR", 1))
    sigma = float(inputs.incar.get("SIGMA", 0.2))
    if ismear <= -4:
        # Tetrahedron: integer occupations for insulators; a narrow Gaussian stands in.
        sigma = min(sigma, 0.01)
    return max(sigma, 1e-4), ismear


def _fill(inputs: JobInputs, eig: np.ndarray, counts: list[float] | None):
    """Occupations and E-fermi: one Fermi level, or one per spin when ``counts`` fix N_s."""
    sigma, ismear = _smearing(inputs)
    w = inputs.kweights
    if counts is None:
        per_state = 1.0 if eig.shape[0] == 2 else 2.0
        mu = fermi_level(eig, w, float(inputs.nelect), sigma, ismear, per_state)
        occ = smearing_occupation((eig - mu) / sigma, ismear)
        return occ, mu, [mu] * eig.shape[0]
    occ = np.zeros_like(eig)
    mus = []
    for s in range(eig.shape[0]):
        mu = fermi_level(eig[s : s + 1], w, counts[s], sigma, ismear)
        mus.append(mu)
        occ[s] = smearing_occupation((eig[s] - mu) / sigma, ismear)
    # With NUPDOWN VASP keeps a Fermi level per spin and prints the lower one (real O2 with
    # NUPDOWN = 2: the printed E-fermi lies below the occupied majority pi* level).
    return occ, min(mus), mus


def smearing_entropy(inputs: JobInputs, eig: np.ndarray, mus: list[float]) -> float:
    """VASP's EENTRO (-T S, eV) of the smeared occupations.

    Gaussian: ``-sigma * sum w exp(-x^2) / (2 sqrt(pi))`` over states (x = (e - E_F) /
    sigma); Methfessel-Paxton order 1: ``(1 - 2 x^2) / 2`` in place of ``exp(-x^2)`` times
    ``exp(-x^2)``. Zero for an insulator with a gap of many SIGMA, a few meV for a metal.
    """
    sigma, ismear = _smearing(inputs)
    factor = 1.0 if eig.shape[0] == 2 else 2.0
    total = 0.0
    for s in range(eig.shape[0]):
        x = np.clip((eig[s] - mus[s]) / sigma, -60, 60)
        if ismear >= 1:
            # Methfessel-Paxton order 1: S = A_1 H_2(x) e^(-x^2) / 2, A_1 = -1/(4 sqrt(pi))
            per_state = (1 - 2 * x**2) * np.exp(-(x**2)) / 2
        else:
            per_state = np.exp(-(x**2))
        total += float(per_state.sum(axis=1) @ inputs.kweights)
    return -sigma * factor * total / (2 * np.sqrt(np.pi))


#: Synthetic per-atom parts of VASP's energy terms (eV): alphaZ, Ewald, Hartree dc, XC dc,
#: PAW double counting (ps, ae) and EATOM. The eigenvalue sum takes the rest, so the terms
#: add up to the free energy as VASP's do (real MgO: to 1e-8 eV).
_TERMS_PER_ATOM = {
    "W": (1.92, -152.31, -61.83, -7.41, 388.62, -361.24, 246.37),
    "O": (0.81, -90.13, -35.27, -4.36, 133.52, -121.71, 224.83),
    "Mg": (9.61, -88.42, -34.66, -4.12, 140.21, -128.94, 228.15),
    "H": (0.22, -8.25, -3.13, -0.94, 5.37, -4.86, 12.61),
}
ENERGY_TERM_NAMES = (
    "alphaZ",
    "ewald",
    "hartreedc",
    "XCdc",
    "pawpsdc",
    "pawaedc",
    "eentropy",
    "bandstr",
    "atom",
)


def energy_terms(species: list[str], free_energy: float, eentropy: float, scf_step: int) -> dict:
    """VASP's free-energy terms for one SCF step, summing exactly to ``free_energy``.

    alphaZ, Ewald and EATOM depend on the atoms only; the double-counting terms relax over
    the SCF steps (``scf_step`` from 1); the eigenvalue sum (bandstr) is the remainder.
    """
    base = np.zeros(7)
    for el in species:
        base += np.asarray(_TERMS_PER_ATOM.get(el, (1.0, -80.0, -30.0, -4.0, 120.0, -110.0, 150.0)))
    relax = 1.0 + 0.03 / max(scf_step, 1)
    alpha, ewald, hartree, xc, pawps, pawae, atom = base
    terms = {
        "alphaZ": alpha,
        "ewald": ewald,
        "hartreedc": hartree * relax,
        "XCdc": xc * relax,
        "pawpsdc": pawps * relax,
        "pawaedc": pawae * relax,
        "eentropy": eentropy,
        "atom": atom,
    }
    terms["bandstr"] = free_energy - sum(terms.values())
    return {name: float(terms[name]) for name in ENERGY_TERM_NAMES}


def _band_energy(inputs: JobInputs, eig: np.ndarray, occ: np.ndarray) -> float:
    factor = 1.0 if eig.shape[0] == 2 else 2.0
    return float(factor * np.einsum("skb,skb,k->", eig, occ, inputs.kweights))


def _relaxed_frac(
    inputs: JobInputs, scenario: Scenario, polarons: list[_Polaron], dopants: list[str]
) -> np.ndarray:
    """Relaxed fractional positions: a symmetric framework, the O stretched at polaron W.

    The reference position of a stretched O comes from its undisplaced symmetry images
    (:func:`~polaronflow.emulator.energy.symmetrised`), so relaxing a relaxed structure
    changes nothing (a ramp step does not stretch the bonds again). Dopants stay where they
    are; a rattle of the framework below ``energy.symprec`` relaxes away.
    """
    lat, frac = inputs.lattice, inputs.frac_coords
    moves = []
    for p in polarons:
        stretch = scenario.dopants[_nearest_dopant(inputs, dopants, p.site)].bond_stretch
        for o in p.oxygens:
            moves.append((o, p.site, stretch))
    framework = set(inputs.species) - set(dopants)
    base = symmetrised(
        lat,
        frac,
        inputs.species,
        scenario.energy.symprec,
        framework=framework,
        displaced={o for o, _, _ in moves},
    )
    cart = base @ lat
    for o, site, stretch in moves:
        vec = _min_image_vec(lat, base[[o]], base[site])[0]
        cart[o] += stretch * vec / np.linalg.norm(vec)
    out = cart @ np.linalg.inv(lat)
    # keep each atom's periodic image next to its input position
    out = frac + (out - frac - np.round(out - frac))
    if inputs.selective_dynamics is not None:
        fixed = ~np.asarray(inputs.selective_dynamics, dtype=bool)
        out[fixed] = frac[fixed]
    return out


def build_run(
    inputs: JobInputs, scenario: Scenario, faults: list[FaultSpec] | None = None
) -> RunModel:
    """Compute the numbers of one emulated run (see module docstring).

    Parameters
    ----------
    inputs
        The job folder's inputs.
    scenario
        The physics to write.
    faults
        Faults active for this run (already filtered; see :mod:`.faults`).

    Returns
    -------
    RunModel
        Energies, structures, eigenvalues, projections and moments.
    """
    faults = faults or []
    kinds = {f.kind for f in faults}
    kind, system, dopants = classify(inputs, scenario)
    rng = np.random.default_rng(_seed(inputs))
    n = inputs.natoms
    species = np.asarray(inputs.species)
    ispin = inputs.ispin
    start = startup(inputs.directory, inputs.incar, inputs.species)
    deloc_u = next((f.below_u for f in faults if f.kind == "delocalise"), None)
    polarons, free, notes = ([], 0, [start.note])
    if kind == "doped":
        polarons, free, notes = _polarons(inputs, scenario, dopants, deloc_u, start)
    ref: ReferencePhysics | None = scenario.references.get(system) if kind == "reference" else None
    metal = bool(ref and ref.kind == "metal")
    u = inputs.u_on_w
    u_ref = scenario.host.u_reference

    # --- the band ladder per spin ----------------------------------------------------------
    nelect_int = round(inputs.nelect)
    n_el = sum(scenario.dopants[species[i]].electrons for i in range(n) if species[i] in dopants)
    nup_tag = inputs.incar.get("NUPDOWN")
    nupdown = float(nup_tag) if (nup_tag is not None and float(nup_tag) >= 0) else None
    ref_moment = 0.0
    if kind == "reference":
        ref_moment = ref.moment_per_formula_unit * n / _atoms_per_fu(system)  # ground moment
        moment = nupdown if nupdown is not None else ref_moment
        moment = round(moment) if ispin == 2 else 0
        if (nelect_int - moment) % 2:
            moment += 1
        ladder_counts = [(nelect_int + moment) // 2, (nelect_int - moment) // 2][:ispin]
        if ispin == 1:
            ladder_counts = [nelect_int // 2 + nelect_int % 2]
    else:
        ladder_counts = [(nelect_int - n_el) // 2] * ispin
    nbands = int(inputs.incar.get("NBANDS") or default_nbands(nelect_int, n))
    nbands_needed = max(ladder_counts) + len(polarons) + max(free, 0) + 1
    too_few_bands = nbands < nbands_needed
    nbands = max(nbands, nbands_needed + 3)

    nk = len(inputs.kpoints)
    disp = _k_dispersion(inputs.kpoints)  # (nk,)
    if kind == "reference":
        vbm, cbm = ref.vbm, ref.cbm
        if metal:
            # Only the two crossing bands (below) reach E_F; the other bands keep clear of it,
            # so the smearing entropy vanishes with SIGMA as a real metal's does (custodian's
            # LargeSigmaHandler would otherwise lower SIGMA without end).
            vbm, cbm = ref.vbm - 1.0, ref.vbm + 1.0
        vw, cw = 5.0, 5.0
    else:
        vbm = scenario.host.vbm
        cbm = scenario.host.cbm + scenario.host.cbm_u_slope * (u - u_ref)
        vw, cw = scenario.host.valence_width, scenario.host.conduction_width
    eig = np.zeros((ispin, nk, nbands))
    groups = np.zeros((ispin, nk, nbands), dtype=np.int32)
    b = np.arange(nbands)
    for s in range(ispin):
        pol_here = [p for p in polarons if (p.sign > 0) == (s == 0)] if ispin == 2 else []
        n_val = ladder_counts[s]
        top = vbm if (kind != "reference" or ref.kind != "molecule" or s == 0) else vbm - 1.4
        frac_v = (n_val - 1 - b[:n_val]) / max(n_val - 1, 1)
        eig[s, :, :n_val] = top - vw * frac_v[None, :] - disp[:, None] * (0.3 + 0.7 * frac_v)
        groups[s, :, :n_val] = (b[:n_val] % 4)[None, :]
        levels = sorted((cbm - p.depth, 8 + polarons.index(p)) for p in pol_here)
        for j, (level, g) in enumerate(levels):
            eig[s, :, n_val + j] = level + 0.001 * disp
            groups[s, :, n_val + j] = g
        first_c = n_val + len(levels)
        nc = nbands - first_c
        frac_c = b[:nc] / max(nc, 1)
        eig[s, :, first_c:] = cbm + cw * frac_c[None, :] + 0.5 * disp[:, None] * (0.2 + frac_c)
        if s == 1 and kind == "doped" and free > 0:
            # Delocalised electrons polarise the W d band (Stoner): the minority band rises,
            # so they spread with parallel spins over every W, as a metal.
            eig[s, :, first_c:] += scenario.host.cb_spin_splitting
        groups[s, :, first_c:] = 4 + (b[:nc] % 4)[None, :]
        if metal:
            # Two bands cross E_F: occupations follow the eigenvalues, so the gap is zero.
            lo = max(n_val - 1, 0)
            # Unequal slopes: the pair is not mirrored about one energy, so E_F is not pinned
            # to a k-point where both bands are degenerate (which would leave a finite
            # smearing entropy at any SIGMA, unlike a real metal).
            eig[s, :, lo] = ref.vbm - 0.3 + 0.9 * disp
            eig[s, :, lo + 1] = ref.vbm + 0.3 - 0.5 * disp
            eig[s] = np.sort(eig[s], axis=1)

    # --- occupations: smeared, E-fermi where they hold NELECT ------------------------------
    natural_occ, natural_ef, natural_mus = _fill(inputs, eig, None)
    mus = natural_mus
    if ispin == 2 and nupdown is not None:
        counts = [(inputs.nelect + nupdown) / 2, (inputs.nelect - nupdown) / 2]
        occ, efermi, mus = _fill(inputs, eig, counts)
        # the cost of the filling NUPDOWN forces, against the free one (eV)
        e_nupdown = max(_band_energy(inputs, eig, occ) - _band_energy(inputs, eig, natural_occ), 0)
    else:
        occ, efermi, e_nupdown = natural_occ, natural_ef, 0.0
    eentropy = smearing_entropy(inputs, eig, mus)
    patterns = _patterns(inputs, polarons, metal)

    # --- moments and charges ---------------------------------------------------------------
    moments = np.zeros(n)
    total_moment = 0.0
    if ispin == 2:
        total_moment = float(
            occ[0].sum(axis=1) @ inputs.kweights - occ[1].sum(axis=1) @ inputs.kweights
        )
        for p in polarons:
            moments[p.site] += p.sign * p.moment
            for t in p.tails:
                moments[t] += (
                    p.sign * scenario.dopants[_nearest_dopant(inputs, dopants, p.site)].tail_moment
                )
            for o in p.oxygens:
                moments[o] += p.sign * 0.01
        spread = total_moment - sum(p.sign for p in polarons)
        if kind != "reference" and abs(spread) > 1e-9:
            w = species == "W"
            moments[w] += 0.3 * spread / w.sum()
        if kind == "reference" and abs(total_moment) > 1e-9:
            moments += 0.85 * total_moment / n
    mom_orb = np.zeros((n, 3))
    is_d = np.isin(species, ["W"])
    mom_orb[:, 0] = 0.005 * moments
    mom_orb[:, 1] = np.where(is_d, 0.02, 0.95) * moments
    mom_orb[:, 2] = moments - mom_orb[:, 0] - mom_orb[:, 1]
    charges = np.array([_CHARGES.get(el, (1.0, 1.0, 0.0)) for el in species], dtype=float)
    charges[:, 2] += np.where(is_d, np.abs(moments), 0.0)

    # --- energy: composition + configuration + spin + functional/ENCUT + geometry ---------
    e_relaxed = _energy(inputs, scenario, kind, system)
    e_relaxed += configuration_energy(
        inputs, scenario, [p.site for p in polarons], [p.sign for p in polarons]
    )
    e_relaxed += e_nupdown
    if kind == "reference":
        # e.g. the O2 singlet (ISPIN = 1, or NUPDOWN = 0) above the triplet
        e_relaxed += ref.moment_energy * abs(abs(total_moment) - abs(ref_moment))
    e_relaxed += functional_and_encut(inputs, scenario)

    # --- ionic steps -------------------------------------------------------------------------
    ibrion = int(inputs.incar.get("IBRION", -1 if int(inputs.incar.get("NSW", 0)) == 0 else 0))
    nsw = int(inputs.incar.get("NSW", 0))
    isif = int(inputs.incar.get("ISIF", 2))
    relax = nsw > 0 and ibrion >= 0
    nsteps = min(nsw, scenario.relaxation.ionic_steps) if relax else 1
    lat0, frac0 = inputs.lattice, inputs.frac_coords
    relaxed = _relaxed_frac(inputs, scenario, polarons, dopants)
    e_geom0 = harmonic_energy(lat0, frac0, relaxed, scenario.energy.harmonic_k)
    lat1, frac1 = lat0.copy(), frac0.copy()
    if relax:
        if isif >= 3 and kind != "reference":
            lat1 = _target_lattice(inputs, scenario, dopants)
        frac1 = relaxed
    ediff = float(inputs.incar.get("EDIFF", 1e-4))
    ediffg = float(inputs.incar.get("EDIFFG", 10 * ediff))
    ftol = abs(ediffg) if ediffg < 0 else 0.05
    nelm = int(inputs.incar.get("NELM", 60))
    nelmin = int(inputs.incar.get("NELMIN", 2))
    steps: list[IonicStep] = []
    relax_de = scenario.relaxation.energy_per_atom * n if relax else 0.0
    for i in range(nsteps):
        f = 1.0 if nsteps == 1 else (1 - 0.35**i) / (1 - 0.35 ** (nsteps - 1))
        if not relax:
            f = 0.0
        lat = lat0 + (lat1 - lat0) * f
        frac = frac0 + (frac1 - frac0) * f
        # harmonic in the displacement: the geometry term falls as (1 - f)^2
        energy = e_relaxed + (relax_de * (1 - f) if relax else 0.0) + e_geom0 * (1 - f) ** 2
        scale = ftol * 0.4 if (not relax or i == nsteps - 1) else ftol * 4 * (1 - f) + ftol
        forces = rng.uniform(-scale, scale, size=(n, 3))
        forces -= forces.mean(axis=0)
        stress_scale = (
            0.5 if (isif >= 3 and (i == nsteps - 1 or not relax)) else 6.0 * (1 - f) + 0.5
        )
        stress = np.diag(rng.uniform(-stress_scale, stress_scale, 3))
        start_de = (0.05 if (start.reads_wavecar or i > 0) else 40.0) * n
        scf = _scf(energy, start_de, ediff, nelm, nelmin, "unconverged" in kinds, rng)
        energy = scf[-1]
        steps.append(IonicStep(lat, frac, energy, forces, stress, scf))
    if too_few_bands:
        notes.append(f"NBANDS = {inputs.incar.get('NBANDS')} is too small: {nbands_needed} needed")
    return RunModel(
        system=system,
        kind=kind,
        natoms=n,
        nbands=nbands,
        ispin=ispin,
        steps=steps,
        eigenvalues=eig,
        occupations=occ,
        groups=groups,
        patterns=patterns,
        efermi=efermi,
        site_moments=moments,
        moment_orbitals=mom_orb,
        charges=charges,
        total_moment=total_moment,
        electronic_converged="unconverged" not in kinds,
        polaron_sites=[p.site for p in polarons],
        polaron_signs=[p.sign for p in polarons],
        free_electrons=free if kind == "doped" else 0,
        reads_wavecar=start.reads_wavecar,
        too_few_bands=too_few_bands,
        eentropy=eentropy,
        relaxation=relax,
        ionic_converged=(not relax) or scenario.relaxation.ionic_steps < nsw,
        u_on_w=inputs.u_on_w,
        notes=notes,
    )


def _atoms_per_fu(formula: str) -> int:
    from pymatgen.core import Composition

    return int(Composition(formula).num_atoms)


def _nearest_dopant(inputs: JobInputs, dopants: list[str], site: int) -> str:
    species = np.asarray(inputs.species)
    idx = np.flatnonzero(np.isin(species, dopants))
    d = _min_image_dist(inputs.lattice, inputs.frac_coords[idx], inputs.frac_coords[site])
    return str(species[idx[int(np.argmin(d))]])


def _scf(
    final: float, start: float, ediff: float, nelm: int, nelmin: int, stuck: bool, rng
) -> list[float]:
    """Electronic-step energies ending at ``final`` (converged) or stuck at NELM.

    Converged: the last energy change is below EDIFF (as VASP requires) after at least
    NELMIN steps. Stuck: the energy keeps oscillating by ~0.02 eV until NELM.
    """
    energies: list[float] = []
    delta = start
    for k in range(nelm):
        energies.append(final + delta)
        if stuck:
            delta = 0.02 * (1 if k % 2 else -1) * (1 + 0.1 * rng.random())
            continue
        if abs(delta) < 0.5 * ediff and len(energies) + 1 >= nelmin and len(energies) < nelm:
            energies.append(final)
            return energies
        delta *= 0.22 * (1 if k % 3 else -1)
    return energies


def is_truthy(value) -> bool:
    """INCAR logical as bool (re-exported for the writers)."""
    return _truthy(value)
