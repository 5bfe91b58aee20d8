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
        None, "--ion", help="Intercalant cation: Mg (default), Li, Na, K, Ca, Zn, Al."
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
        "auto", "--polarons", help="auto, none, or W site indices, e.g. 37,0."
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
        help="Also list symmetry-distinct polaron configurations over these W shells, e.g. 1,2.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace a non-empty output folder."),
) -> None:
    """Build a doped, polaron-seeded WO3 supercell and write it with a JSON manifest."""
    from rich.table import Table

    from polaronflow.errors import InputError
    from polaronflow.structures.builder import build_doped

    if ion is not None and protons is not None:
        raise InputError("give either --ion or --protons, not both")
    o_list = _int_list(o_indices, "--o-indices") if o_indices else None
    shells = _int_list(enumerate_shells, "--enumerate") if enumerate_shells else None
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
    )
    result.write(out, force=force)
    manifest = result.manifest()
    console = _console()
    doping = manifest["doping"]
    console.print(
        f"[bold]{manifest['formula']}[/] ({manifest['n_sites']} sites) — {doping['label']}, "
        f"{doping['electrons_donated']} electrons donated → {out}"
    )
    table = Table(title="Polaron seeds")
    for col in ("W index", "shell", "d(dopant–W) / Å", "seed moment / μB"):
        table.add_column(col, justify="right")
    for seed in manifest["polaron_seeds"]:
        table.add_row(
            str(seed["w_index"]),
            str(seed["shell"]),
            f"{seed['distance_to_dopant']:.3f}",
            f"{seed['seed_moment']:.2f}",
        )
    console.print(table)
    if result.configurations:
        console.print(
            f"{len(result.configurations)} symmetry-distinct configurations over shells "
            f"{shells} (listed in manifest.json)"
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
        9.0, "--max-distance", help="Largest W distance listed (Å)."
    ),
) -> None:
    """List the A-site cavities of the host supercell and the W shells around one of them."""
    from rich.table import Table

    from polaronflow.errors import DopingError
    from polaronflow.structures.host import gamma_wo3, load_host, make_supercell
    from polaronflow.structures.sites import cavity_sites, w_shells

    base = gamma_wo3() if host is None else load_host(host)
    structure = make_supercell(base, supercell)
    cavities = cavity_sites(structure)
    if not 0 <= cavity < len(cavities):
        raise DopingError(f"cavity index {cavity} is out of range (valid: 0..{len(cavities) - 1})")
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
    shell_table = Table(title=f"W shells around cavity {cavity}")
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
