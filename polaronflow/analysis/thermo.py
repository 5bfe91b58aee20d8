"""Reaction energies from runs, with the O2 chemical potential.

A reaction is written with formulas, e.g. ``"Mg + 1/2 O2 -> MgO"``; each formula is matched to a
run, the run's energy is divided by the number of formula units its cell holds, and
ΔE = Σ ν·E(products) − Σ ν·E(reactants).  O2 enters through its chemical potential

    μ_O2(T, pO2) = E(O2) + kB·T·ln(pO2 / P0)            (P0 = 1 atm; the paper's correction)
                 [+ 2·Δμ_O(T, P0)]                     (``temperature_term="reuter-scheffler"``)

The optional temperature term is the tabulated Δμ_O(T, P0) per O atom of Reuter & Scheffler,
Phys. Rev. B 65, 035406 (2002), Table I (from JANAF enthalpies and entropies), interpolated
linearly; it is never added unless asked for by name.

Runs are combined only when they were made consistently (same functional, same U on shared
elements, same POTCAR family and the same POTCAR per shared element, all converged); otherwise
:class:`~polaronflow.errors.MismatchError` — or, with ``allow_mismatch``, a result that lists
what was overridden.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from polaronflow.analysis.models import EV_TO_KJ_PER_MOL, ReactionEnergy, ReactionTerm
from polaronflow.analysis.rundata import RunData
from polaronflow.errors import InputError, MismatchError, RunQualityError

#: Boltzmann constant, eV/K (CODATA 2018).
KB_EV = 8.617333262e-5
#: Standard pressure of the O2 term, atm.
P0_ATM = 1.0

#: The paper's two reactions (Eq. 1 and Eq. 2).
PRESET_REACTIONS: dict[str, str] = {
    "MgO-formation": "Mg + 1/2 O2 -> MgO",
    "MgO-from-Mg-WO3": "Mg(WO3)64 + 1/2 O2 -> MgO + (WO3)64",
}

#: Δμ_O(T, P0 = 1 atm) per O atom, eV, vs T, K: Reuter & Scheffler, PRB 65, 035406 (2002),
#: Table I (0 K added: the reference of Δμ_O is ½E(O2) at 0 K).
REUTER_SCHEFFLER_DMU_O: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (100.0, -0.08),
    (200.0, -0.17),
    (300.0, -0.27),
    (400.0, -0.38),
    (500.0, -0.50),
    (600.0, -0.61),
    (700.0, -0.73),
    (800.0, -0.85),
    (900.0, -0.98),
    (1000.0, -1.10),
)
REUTER_SCHEFFLER_SOURCE = (
    "K. Reuter and M. Scheffler, Phys. Rev. B 65, 035406 (2002), Table I "
    "(JANAF-based Δμ_O(T, 1 atm)), linear interpolation"
)

_TOKEN = re.compile(r"([A-Z][a-z]?|\(|\)|\d+(?:\.\d+)?)")


# ------------------------------------------------------------------------------ formulas
def parse_formula(formula: str) -> dict[str, float]:
    """Element counts of a formula such as ``"Mg(WO3)64"`` or ``"W64O192Mg"``.

    Raises
    ------
    InputError
        Characters that are not part of a formula or unbalanced parentheses.
    """
    text = formula.replace(" ", "")
    tokens = _TOKEN.findall(text)
    if not text or "".join(tokens) != text:
        raise InputError(f"cannot read the formula {formula!r} (e.g. 'MgO', 'Mg(WO3)64')")
    stack: list[dict[str, float]] = [{}]
    last: dict[str, float] | None = None
    for tok in tokens:
        if tok == "(":
            stack.append({})
            last = None
        elif tok == ")":
            if len(stack) == 1:
                raise InputError(f"unbalanced ')' in the formula {formula!r}")
            last = stack.pop()
            for el, n in last.items():
                stack[-1][el] = stack[-1].get(el, 0.0) + n
        elif tok[0].isdigit():
            if last is None:
                raise InputError(f"a number without an element in the formula {formula!r}")
            factor = float(tok) - 1.0
            for el, n in last.items():
                stack[-1][el] = stack[-1].get(el, 0.0) + n * factor
            last = None
        else:
            stack[-1][tok] = stack[-1].get(tok, 0.0) + 1.0
            last = {tok: 1.0}
    if len(stack) != 1:
        raise InputError(f"unbalanced '(' in the formula {formula!r}")
    return {el: n for el, n in stack[0].items() if n}


def composition_of(species: list[str]) -> dict[str, float]:
    """Element counts of a list of site species."""
    out: dict[str, float] = {}
    for s in species:
        out[s] = out.get(s, 0.0) + 1.0
    return out


def formula_units(composition: Mapping[str, float], formula: str) -> float:
    """How many formula units of ``formula`` a cell with ``composition`` holds.

    Raises
    ------
    MismatchError
        The cell's composition is not a multiple of the formula.
    """
    target = parse_formula(formula)
    if set(target) != {el for el, n in composition.items() if n}:
        raise MismatchError(f"a cell of {_fmt(composition)} is not made of {formula} units")
    ratios = {el: composition[el] / n for el, n in target.items()}
    values = list(ratios.values())
    if max(values) - min(values) > 1e-6 * max(values):
        raise MismatchError(f"a cell of {_fmt(composition)} is not a multiple of {formula}")
    return values[0]


def _fmt(comp: Mapping[str, float]) -> str:
    return "".join(f"{el}{n:g}" if n != 1 else el for el, n in comp.items())


def parse_reaction(reaction: str) -> tuple[dict[str, float], dict[str, float]]:
    """Reactants and products with coefficients of ``"a A + b B -> c C"``.

    Coefficients may be integers, decimals or fractions (``1/2``); ``->``, ``=>``, ``→`` and
    ``=`` separate the sides.
    """
    parts = re.split(r"->|=>|→|=", reaction)
    if len(parts) != 2:
        raise InputError(f"a reaction needs one '->': {reaction!r}")

    def side(text: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for term in text.split("+"):
            term = term.strip()
            if not term:
                raise InputError(f"empty term in the reaction {reaction!r}")
            m = re.fullmatch(r"(\d+(?:\.\d+)?(?:/\d+)?)?\s*(\S+)", term)
            if not m:
                raise InputError(f"cannot read the term {term!r} of {reaction!r}")
            coef = float(Fraction(m.group(1))) if m.group(1) else 1.0
            parse_formula(m.group(2))
            out[m.group(2)] = out.get(m.group(2), 0.0) + coef
        return out

    return side(parts[0]), side(parts[1])


def check_balanced(reactants: Mapping[str, float], products: Mapping[str, float]) -> None:
    """Raise :class:`InputError` unless every element balances."""
    net: dict[str, float] = {}
    for sign, sidemap in ((-1.0, reactants), (1.0, products)):
        for formula, coef in sidemap.items():
            for el, n in parse_formula(formula).items():
                net[el] = net.get(el, 0.0) + sign * coef * n
    bad = {el: v for el, v in net.items() if abs(v) > 1e-8}
    if bad:
        detail = ", ".join(f"{el} {v:+g}" for el, v in bad.items())
        raise InputError(f"the reaction is not balanced (products - reactants: {detail})")


# ------------------------------------------------------------------------- O2 potential
def o2_pressure_term(temperature: float, p_o2: float, p0: float = P0_ATM) -> float:
    """kB·T·ln(pO2/P0) per O2 molecule, eV.

    Raises
    ------
    InputError
        Negative temperature or non-positive pressure.
    """
    if temperature < 0:
        raise InputError(f"temperature must be >= 0 K, got {temperature}")
    if p_o2 <= 0 or p0 <= 0:
        raise InputError(f"O2 partial pressure must be > 0 atm, got {p_o2}")
    return KB_EV * temperature * math.log(p_o2 / p0)


def delta_mu_o_tabulated(temperature: float) -> float:
    """Δμ_O(T, 1 atm) per O atom from Reuter & Scheffler's table, eV (linear interpolation).

    Raises
    ------
    InputError
        T outside the table (0–1000 K).
    """
    t, mu = np.array(REUTER_SCHEFFLER_DMU_O).T
    if not t[0] <= temperature <= t[-1]:
        raise InputError(
            f"the tabulated O2 temperature term covers {t[0]:g}-{t[-1]:g} K, got {temperature} K"
        )
    return float(np.interp(temperature, t, mu))


def o2_chemical_potential(
    e_o2: float,
    temperature: float | None = None,
    p_o2: float | None = None,
    temperature_term: str | None = None,
) -> tuple[float, float | None, float | None]:
    """μ_O2 per molecule and its two corrections, eV.

    Parameters
    ----------
    e_o2
        Total energy of the O2 molecule, eV.
    temperature, p_o2
        T (K) and O2 partial pressure (atm) of the pressure term; both or neither.
    temperature_term
        ``None`` (the paper: pressure term only) or ``"reuter-scheffler"`` (add 2·Δμ_O(T, P0)).

    Returns
    -------
    tuple
        ``(mu_o2, pressure_term, temperature_term_value)``.
    """
    if (temperature is None) != (p_o2 is None) and temperature_term is None:
        raise InputError("give both the temperature and the O2 partial pressure, or neither")
    pressure = None
    if temperature is not None and p_o2 is not None:
        pressure = o2_pressure_term(temperature, p_o2)
    tterm = None
    if temperature_term is not None:
        if temperature_term.lower() != "reuter-scheffler":
            raise InputError(
                f"unknown O2 temperature term {temperature_term!r}: valid is 'reuter-scheffler'"
            )
        if temperature is None:
            raise InputError("the tabulated O2 temperature term needs a temperature")
        tterm = 2.0 * delta_mu_o_tabulated(temperature)
    return e_o2 + (pressure or 0.0) + (tterm or 0.0), pressure, tterm


# ------------------------------------------------------------------------ consistency
def u_by_block(run: RunData) -> list[tuple[str, float | None, int | None]]:
    """(element, effective U = U - J in eV or None, LDAUL) per POTCAR species block.

    VASP's LDAUU/LDAUL/LDAUJ have one entry per species *block* (POTCAR), not per element: a
    run that lists an element twice (a separate block for seeded polaron sites) has more
    entries than elements.  U is None where LDAUL = -1 (no U on that block).
    """
    p = run.parameters
    blocks = run.blocks()
    if not p.get("LDAU", run.incar.get("LDAU", False)):
        return [(el, None, None) for el, _ in blocks]
    uu = list(p.get("LDAUU") or [])
    jj = list(p.get("LDAUJ") or [0.0] * len(uu))
    ll = list(p.get("LDAUL") or [2] * len(uu))
    out: list[tuple[str, float | None, int | None]] = []
    for k, (el, _) in enumerate(blocks):
        lval = int(ll[k]) if k < len(ll) and ll[k] is not None else None
        if k < len(uu) and uu[k] is not None and (lval is None or lval >= 0):
            out.append((el, float(uu[k]) - float(jj[k] if k < len(jj) else 0.0), lval))
        else:
            out.append((el, None, lval))
    return out


def u_by_element(run: RunData) -> dict[str, float]:
    """Effective Hubbard U (U - J, eV) per element with U, from the species blocks.

    An element whose blocks carry different U gets the largest (see :func:`u_sets`, which
    keeps them all); elements without U (LDAUL = -1 or U = 0) are left out.
    """
    out: dict[str, float] = {}
    for el, values in u_sets(run).items():
        nonzero = [u for u in values if u]
        if nonzero:
            out[el] = max(nonzero)
    return out


def u_sets(run: RunData) -> dict[str, tuple[float, ...]]:
    """Every distinct effective U (0 for none) per element over its species blocks, eV."""
    out: dict[str, set[float]] = {}
    for el, u, _ in u_by_block(run):
        out.setdefault(el, set()).add(round(u or 0.0, 6))
    return {el: tuple(sorted(v)) for el, v in out.items()}


def potcars_by_element(run: RunData) -> dict[str, tuple[str, ...]]:
    """POTCAR titles per element, through the species blocks (distinct titles, in order)."""
    out: dict[str, list[str]] = {}
    blocks = run.blocks()
    if len(run.potcars) != len(blocks):
        # A file that does not list one title per block (some OUTCARs print each POTCAR
        # once): pair titles with elements by the element the title names.
        for title in run.potcars:
            toks = title.split()
            el = toks[1].split("_")[0] if len(toks) > 1 else ""
            out.setdefault(el, []).append(title)
        return {el: tuple(dict.fromkeys(v)) for el, v in out.items()}
    for (el, _), title in zip(blocks, run.potcars, strict=True):
        out.setdefault(el, []).append(title)
    return {el: tuple(dict.fromkeys(v)) for el, v in out.items()}


def _family(title: str) -> str:
    return title.split()[0] if title.split() else title


_PREC = {"acc": "accurate", "nor": "normal", "hig": "high", "med": "medium", "low": "low"}


def _setting(run: RunData, key: str) -> Any:
    """A setting as compared between runs: typed, normalised, VASP's default if not given."""
    val = run.incar.get(key, run.parameters.get(key))
    if key == "ENCUT":
        return None if val is None else round(float(val), 3)
    if key == "PREC":
        text = str(val or "normal").strip().lower()
        return _PREC.get(text[:3], text)
    if key == "LASPH":
        return bool(val) if val is not None else False
    if key == "LREAL":
        # Only on/off matters for energies here; 'Auto' and '.TRUE.' are both real-space.
        if isinstance(val, str):
            return val.strip(".").upper()[:1] not in ("F", "")
        return bool(val) if val is not None else False
    if key == "ISPIN":
        return run.ispin
    return val


#: Settings that must agree between runs combined into an energy difference.
CONSISTENCY_SETTINGS = ("ENCUT", "PREC", "LASPH", "LREAL", "ISPIN")


def consistency_problems(runs: Mapping[str, RunData]) -> list[str]:
    """Why the runs should not be combined into energy differences (empty: fine).

    Checked: convergence, functional, U and POTCAR per element (through the species blocks),
    the POTCAR family, and :data:`CONSISTENCY_SETTINGS` (ENCUT, PREC, LASPH, LREAL, ISPIN).
    """
    problems: list[str] = []
    items = list(runs.items())
    for label, run in items:
        if not run.converged:
            why = "; ".join(run.problems) or "not converged"
            problems.append(f"{run.path} ({label}): unconverged run: {why}")
    funcs = {label: (run.functional or "unknown") for label, run in items}
    if len(set(funcs.values())) > 1:
        problems.append("different functionals: " + ", ".join(f"{k} {v}" for k, v in funcs.items()))
    for key in CONSISTENCY_SETTINGS:
        vals = {label: _setting(run, key) for label, run in items}
        known = {k: v for k, v in vals.items() if v is not None}
        if len({repr(v) for v in known.values()}) > 1:
            problems.append(f"different {key}: " + ", ".join(f"{k} {v}" for k, v in known.items()))
    us = {label: u_sets(run) for label, run in items}
    pots = {label: potcars_by_element(run) for label, run in items}
    for label, _ in items:
        for el, values in us[label].items():
            if len(values) > 1:
                problems.append(
                    f"{label}: {el} blocks carry different U ({', '.join(f'{u:g}' for u in values)}"
                    " eV)"
                )
    for a in range(len(items)):
        for b in range(a + 1, len(items)):
            la, ra = items[a]
            lb, rb = items[b]
            shared = set(ra.species) & set(rb.species)
            for el in sorted(shared):
                ua, ub = us[la].get(el, (0.0,)), us[lb].get(el, (0.0,))
                if ua != ub:
                    fa = "/".join(f"{u:g}" for u in ua)
                    fb = "/".join(f"{u:g}" for u in ub)
                    problems.append(f"different U on {el}: {la} {fa} eV, {lb} {fb} eV")
                pa, pb = pots[la].get(el, ()), pots[lb].get(el, ())
                if (
                    pa
                    and pb
                    and {t.split()[1] if len(t.split()) > 1 else t for t in pa}
                    != {t.split()[1] if len(t.split()) > 1 else t for t in pb}
                ):
                    problems.append(
                        f"different POTCARs for {el}: {la} '{'; '.join(pa)}', "
                        f"{lb} '{'; '.join(pb)}'"
                    )
    fams = {label: {_family(t) for t in run.potcars} for label, run in items if run.potcars}
    allf = set().union(*fams.values()) if fams else set()
    if len(allf) > 1:
        problems.append(
            "different POTCAR families: "
            + ", ".join(f"{k} {'/'.join(sorted(v))}" for k, v in fams.items())
        )
    return problems


def run_energy(run: RunData) -> float:
    """The energy used for reactions: energy(sigma->0) when read, else the free energy, eV."""
    e = run.final_energy_sigma0 if run.final_energy_sigma0 is not None else run.final_energy
    if e is None:
        raise RunQualityError(f"{run.path}: no final energy was read")
    return float(e)


# ---------------------------------------------------------------------------- reactions
def reaction_energy(
    reaction: str,
    runs: Mapping[str, RunData],
    *,
    temperature: float | None = None,
    p_o2: float | None = None,
    temperature_term: str | None = None,
    allow_mismatch: bool = False,
    gas: str = "O2",
) -> ReactionEnergy:
    """ΔE of a balanced reaction from runs, per reaction as written.

    Parameters
    ----------
    reaction
        E.g. ``"Mg + 1/2 O2 -> MgO"`` or a key of :data:`PRESET_REACTIONS`.
    runs
        Formula (as written in the reaction) → run.  Each run's energy is divided by the formula
        units its cell holds.
    temperature, p_o2
        T (K) and pO2 (atm) of the O2 pressure term kB·T·ln(pO2/P0) (P0 = 1 atm).
    temperature_term
        ``"reuter-scheffler"`` adds the tabulated O2 temperature term (beyond the paper).
    allow_mismatch
        Combine inconsistent or unconverged runs anyway; the result lists what was overridden.
    gas
        Formula that receives the chemical-potential terms.

    Returns
    -------
    ReactionEnergy

    Raises
    ------
    InputError
        Unbalanced reaction or a formula without a run.
    MismatchError
        Inconsistent runs (unless ``allow_mismatch``), or a cell that is not made of the formula.
    """
    text = PRESET_REACTIONS.get(reaction, reaction)
    reactants, products = parse_reaction(text)
    check_balanced(reactants, products)
    needed = list(reactants) + [f for f in products if f not in reactants]
    missing = [f for f in needed if f not in runs]
    if missing:
        raise InputError(f"no run given for {', '.join(missing)} in {text!r}")
    used = {f: runs[f] for f in needed}
    problems = consistency_problems(used)
    if problems and not allow_mismatch:
        raise MismatchError(
            "; ".join(problems) + " (override with allow_mismatch / --allow-unconverged)"
        )
    terms: list[ReactionTerm] = []
    dft = 0.0
    total = 0.0
    pressure = tterm = None
    for sign, side_name, sidemap in ((-1.0, "reactant", reactants), (1.0, "product", products)):
        for formula, coef in sidemap.items():
            run = used[formula]
            try:
                n_fu = formula_units(composition_of(run.species), formula)
            except MismatchError as exc:
                raise MismatchError(f"{run.path}: {exc}") from None
            e_fu = run_energy(run) / n_fu
            corr = 0.0
            if formula == gas and (temperature is not None or temperature_term is not None):
                mu, pressure, tterm = o2_chemical_potential(
                    e_fu, temperature, p_o2, temperature_term
                )
                corr = mu - e_fu
            terms.append(
                ReactionTerm(
                    formula=formula,
                    coefficient=coef,
                    side=side_name,
                    run=str(run.path),
                    formula_units=n_fu,
                    energy_per_fu=e_fu,
                    correction_per_fu=corr,
                )
            )
            dft += sign * coef * e_fu
            total += sign * coef * (e_fu + corr)
    return ReactionEnergy(
        reaction=text,
        terms=terms,
        delta_e_dft=dft,
        delta_e=total,
        delta_e_kj_mol=total * EV_TO_KJ_PER_MOL,
        temperature=temperature,
        p_o2=p_o2,
        o2_pressure_term=pressure,
        o2_temperature_term=tterm,
        temperature_term_source=REUTER_SCHEFFLER_SOURCE if tterm is not None else None,
        overridden=problems,
    )


def corrected_reaction_energy(
    delta_e: float,
    o2_coefficient: float,
    temperature: float,
    p_o2: float,
    temperature_term: str | None = None,
) -> float:
    """A reaction energy with O2 among the reactants, shifted by the O2 chemical potential.

    The arithmetic of the paper's correction on a given ΔE (no runs needed):
    ΔE' = ΔE − ν(O2)·[kB·T·ln(pO2/P0) (+ 2·Δμ_O(T, P0))].

    Parameters
    ----------
    delta_e
        ΔE from total energies, eV.
    o2_coefficient
        ν of O2 on the reactant side (negative if O2 is a product).
    temperature, p_o2
        T (K) and pO2 (atm).
    temperature_term
        ``"reuter-scheffler"`` to add the tabulated temperature term.
    """
    _, pressure, tterm = o2_chemical_potential(0.0, temperature, p_o2, temperature_term)
    return delta_e - o2_coefficient * ((pressure or 0.0) + (tterm or 0.0))


def ev_to_kj_per_mol(value: float) -> float:
    """eV per reaction → kJ/mol (96.485 kJ/mol per eV)."""
    return value * EV_TO_KJ_PER_MOL
