"""``polaronflow build`` and ``polaronflow sites``: doped supercells and the sites they use."""

from __future__ import annotations

from pathlib import Path

import typer

from polaronflow.cli import app


def _console():
    from rich.console import Console

    return Console()


@app.command()
def build(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Folder to write POSCAR, POSCAR.host, manifest.json."
    ),
    ion: str = typer.Option(
        None,
        "--ion",
        help="Dopant: a cation, Mg (default), Li, Na, K, Ca, Zn, Al, or nH for n protons (2H = "
        "--protons 2).",
    ),
    protons: int = typer.Option(
        None, "--protons", help="Add this many protons as O–H instead of a cation."
    ),
    placement: str = typer.Option("far", "--placement", help="Proton pair placement: far or near."),
    o_indices: str = typer.Option(
        None, "--o-indices", help="Explicit O site indices for the protons, e.g. 64,71."
    ),
    cavity: str = typer.Option(
        "auto", "--cavity", help="Cavity index (see 'polaronflow sites') or auto."
    ),
    polarons: str = typer.Option(
        "auto",
        "--polarons",
        help="auto, none, or comma-separated seeds: 0-based W site indices (37,0), VASP ion "
        "numbers (ion:38,ion:1) or distances to the dopant in Å (d:3.24,d:6.24); mixing is "
        "allowed.",
    ),
    seed_tolerance: float = typer.Option(
        0.25,
        "--seed-tolerance",
        help="Tie tolerance of the seed rule for auto seeds (Å): among W within it of the "
        "nearest the lowest index wins, the same W before and after a relaxation.",
    ),
    distance_tolerance: float = typer.Option(
        0.05,
        "--distance-tolerance",
        help="Tie and match tolerance of d: seeds (Å).",
    ),
    supercell: tuple[int, int, int] = typer.Option(
        (2, 2, 2), "--supercell", help="Supercell multiples."
    ),
    host: Path = typer.Option(None, "--host", help="Host CIF/POSCAR (default: embedded γ-WO3)."),
    seed_moment: float = typer.Option(
        1.0, "--seed-moment", help="Initial moment on each seed W (μB)."
    ),
    stretch: float = typer.Option(
        0.0, "--stretch", help="Elongate the seed W–O bonds by this fraction (e.g. 0.03)."
    ),
    allow_count_mismatch: bool = typer.Option(
        False,
        "--allow-count-mismatch",
        help="Allow a seed count different from the electrons donated.",
    ),
    enumerate_shells: str = typer.Option(
        None,
        "--enumerate",
        help="Also enumerate the search candidates over these W shells, e.g. 1,2: printed and "
        "written to candidates.json.",
    ),
    class_tolerance: float = typer.Option(
        0.3,
        "--class-tolerance",
        help="Pseudo-symmetry tolerance of --enumerate (Å): configurations whose sorted "
        "dopant–W and W–W distances agree within it form one class; 0 = exact symmetry only.",
    ),
    enumerate_cavities: str = typer.Option(
        "all",
        "--enumerate-cavities",
        help="Cavities of --enumerate: all (one per symmetry orbit), auto, or indices, e.g. 0,32.",
    ),
    nupdown: str = typer.Option(
        "auto",
        "--nupdown",
        help="Spin states of --enumerate (NUPDOWN): auto (all: 0,2 for two polarons) or e.g. 0,2.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
) -> None:
    """Build a doped, polaron-seeded WO3 supercell and write it with a JSON manifest."""
    from rich.table import Table

    from polaronflow.errors import InputError
    from polaronflow.structures.builder import build_doped

    if ion is not None and protons is not None:
        raise InputError("give either --ion or --protons, not both")
    if ion is not None:
        from polaronflow.errors import WorkflowError
        from polaronflow.workflows.campaign.options import parse_ion

        try:
            spec = parse_ion(ion)
        except WorkflowError as exc:
            raise InputError(f"--ion: {exc}") from None
        if spec.protons:
            ion, protons = None, spec.protons
        else:
            ion = spec.ion
    o_list = _int_list(o_indices, "--o-indices") if o_indices else None
    shells = _int_list(enumerate_shells, "--enumerate") if enumerate_shells else None
    nupdown_states = (
        "auto" if nupdown.strip().lower() == "auto" else _int_list(nupdown, "--nupdown")
    )
    if not class_tolerance >= 0:
        raise InputError(f"--class-tolerance {class_tolerance} must be a number >= 0 (Å)")
    result = build_doped(
        ion=ion or "Mg",
        protons=protons,
        cavity=cavity,
        placement=placement,
        o_indices=o_list,
        polarons=polarons,
        supercell=supercell,
        host=host,
        seed_moment=seed_moment,
        stretch=stretch,
        allow_count_mismatch=allow_count_mismatch,
        enumerate_shells=shells,
        seed_tolerance=seed_tolerance,
        distance_tolerance=distance_tolerance,
        enumerate_tolerance=class_tolerance or None,
        enumerate_cavities=enumerate_cavities,
        enumerate_nupdown=nupdown_states,
    )
    result.write(out, force=force)
    manifest = result.manifest()
    console = _console()
    doping = manifest["doping"]
    console.print(
        f"[bold]{manifest['formula']}[/] ({manifest['n_sites']} sites) — {doping['label']}, "
        f"{doping['electrons_donated']} electrons donated → {out}"
    )
    rule = manifest["seed_rule"]
    table = Table(title=f"Polaron seeds ({', '.join(rule['request'])})")
    columns = ["W index (0-based)", "VASP ion", "shell", "d(dopant–W) / Å", "seed moment / μB"]
    margins = rule["margins"]
    for col in columns + (["rule margin / Å"] if margins else []):
        table.add_column(col, justify="right")
    for k, seed in enumerate(manifest["polaron_seeds"]):
        row = [
            str(seed["w_index"]),
            str(seed["vasp_ion"]),
            str(seed["shell"]),
            f"{seed['distance_to_dopant']:.3f}",
            f"{seed['seed_moment']:.2f}",
        ]
        table.add_row(*row, *([f"{margins[k]:.3f}"] if margins else []))
    console.print(table)
    if margins:
        console.print(
            f"auto seeds: lowest W index within {rule['tie_tolerance']} Å of the nearest in each "
            "shell (stable while distances move less than the margin)"
        )
    if result.candidates is not None:
        _print_candidates(console, result.candidates, out)


def _print_candidates(console, cset, out: Path) -> None:
    from rich.table import Table

    tol = "exact symmetry only" if cset.tolerance is None else f"tolerance {cset.tolerance} Å"
    for group in cset.groups:
        where = (
            f"cavity {group.cavity_index} (orbit {group.cavity_orbit}, "
            f"{group.cavity_orbit_size} equivalent cavities)"
            if group.cavity_index is not None
            else "protons (first H on each O-site orbit, then the placement rule)"
        )
        console.print(
            f"{where}: {group.n_configurations} configurations, {group.n_orbits} "
            f"symmetry-distinct ({group.site_symmetry_operations} symmetry operations), "
            f"{group.n_classes} classes ({tol})"
        )
    first_state = cset.nupdown[0] if cset.nupdown else None
    protons = cset.dopant == "H"
    table = Table(title=f"Candidate classes ({cset.n_classes}; each in NUPDOWN {cset.nupdown})")
    columns = ["class", "O (0-based)" if protons else "cavity", "shells", "W index (VASP ion)"]
    columns += ["d(dopant–W)/Å", "d(W–W)/Å"] + (["d(H–H)/Å"] if protons else []) + ["count"]
    for col in columns:
        table.add_column(col, justify="right")
    for cand in cset.candidates:
        if cand.nupdown != first_state:
            continue
        where = ",".join(str(o) for o in cand.o_indices) if protons else str(cand.cavity_index)
        row = [
            str(cand.class_id),
            where,
            ",".join(str(x) for x in cand.shells),
            " ".join(f"{s.index}({s.vasp_ion})" for s in cand.seeds),
            " ".join(f"{d:.2f}" for d in cand.dopant_w_distances),
            " ".join(f"{d:.2f}" for d in cand.w_w_distances),
        ]
        if protons:
            row.append(" ".join(f"{d:.2f}" for d in cand.dopant_dopant_distances))
        table.add_row(*row, str(cand.count))
    console.print(table)
    console.print(
        f"{cset.n_configurations} configurations in {cset.n_classes} classes ({tol}); "
        f"{len(cset.candidates)} candidates with the spin states → {out / 'candidates.json'}"
    )


def _int_list(text: str, option: str) -> list[int]:
    from polaronflow.errors import InputError

    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise InputError(f"{option} {text!r} must be integers separated by commas") from None


@app.command()
def sites(
    host: Path = typer.Option(None, "--host", help="Host CIF/POSCAR (default: embedded γ-WO3)."),
    supercell: tuple[int, int, int] = typer.Option(
        (2, 2, 2), "--supercell", help="Supercell multiples."
    ),
    cavity: int = typer.Option(0, "--cavity", help="Cavity whose W shells are listed."),
    max_distance: float = typer.Option(
        9.0, "--max-distance", help="Largest W distance listed in the table (Å)."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print JSON instead: the cavities and every W (0-based index, VASP ion number, "
        "distance to the cavity centre, shell).",
    ),
    seed_tolerance: float = typer.Option(
        0.25, "--seed-tolerance", help="Tie tolerance of the seed rule shown per shell (Å)."
    ),
) -> None:
    """List the A-site cavities of the host supercell and the W shells around one of them."""
    from rich.table import Table

    from polaronflow.errors import DopingError, InputError
    from polaronflow.structures.host import gamma_wo3, load_host, make_supercell
    from polaronflow.structures.polarons import w_site_table
    from polaronflow.structures.sites import cavity_sites, w_shells

    if not max_distance > 0:
        raise InputError(f"--max-distance {max_distance} must be a positive distance (Å)")
    if not seed_tolerance >= 0:
        raise InputError(f"--seed-tolerance {seed_tolerance} must be a number >= 0 (Å)")
    base = gamma_wo3() if host is None else load_host(host)
    structure = make_supercell(base, supercell)
    cavities = cavity_sites(structure)
    if not 0 <= cavity < len(cavities):
        raise DopingError(f"cavity index {cavity} is out of range (valid: 0..{len(cavities) - 1})")
    if as_json:
        import json
        import sys

        data = w_site_table(
            structure, cavities, cavity, seed_tolerance=seed_tolerance, max_distance=max_distance
        )
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
        return
    console = _console()
    table = Table(
        title=f"A-site cavities of {structure.composition.formula.replace(' ', '')} "
        f"({len(cavities)})"
    )
    for col in ("index", "orbit", "a", "b", "c", "nearest W / Å"):
        table.add_column(col, justify="right")
    for cav in cavities:
        nearest = min(
            structure.lattice.get_distance_and_image(cav.frac_coords, structure[w].frac_coords)[0]
            for w in cav.w_indices
        )
        table.add_row(
            str(cav.index), str(cav.orbit), *(f"{x:.4f}" for x in cav.frac_coords), f"{nearest:.3f}"
        )
    console.print(table)
    shells = w_shells(structure, cavities[cavity].cart_coords, max_distance=max_distance)
    shell_table = Table(title=f"W shells around cavity {cavity} (0-based indices, nearest first)")
    for col in ("shell", "count", "d_min / Å", "d_max / Å", "W indices (nearest first)"):
        shell_table.add_column(col, justify="right")
    for shell in shells:
        shown = ",".join(str(i) for i in shell.w_indices[:12]) + (
            " …" if len(shell.w_indices) > 12 else ""
        )
        shell_table.add_row(
            str(shell.number), str(shell.count), f"{shell.d_min:.3f}", f"{shell.d_max:.3f}", shown
        )
    console.print(shell_table)
    console.print("every W with its distance and VASP ion number: polaronflow sites --json")
