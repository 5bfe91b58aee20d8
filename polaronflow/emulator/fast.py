"""Lighter VASP parameters for demos and end-to-end tests on the emulator.

The emulator writes what VASP would for the INCAR and KPOINTS it is given, so a paper-size
run (256 atoms, LORBIT 11, our default NEDOS 3001, 2x2x2 k-points) produces hundreds of MB per
job. For a demonstration that must finish in minutes, :func:`fast_parameters_file` writes a
copy of the project's parameter YAML with a coarser k-point length and a smaller NEDOS; every
changed value is recorded in the file's header so nobody mistakes it for the paper's settings.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

#: What the fast settings change, and to what.
FAST_CHANGES = {"kpoints.length": 8.0, "static.NEDOS": 601}


def fast_parameters_file(dest: str | Path) -> Path:
    """Write the fast parameter YAML to ``dest`` (a file path) and return it.

    Parameters
    ----------
    dest
        Where to write the YAML.

    Returns
    -------
    Path
        ``dest``.
    """
    source = resources.files("polaronflow") / "templates" / "scan_u_incar.yaml"
    data = yaml.safe_load(source.read_text())
    for dotted, value in FAST_CHANGES.items():
        section, key = dotted.split(".")
        data[section][key] = value
    header = [
        "# polaronflow FAST demo/test parameters -- NOT the paper's settings.",
        "# A copy of templates/scan_u_incar.yaml with these changes, to keep emulated runs small:",
        *[f"#   {k}: {v}" for k, v in FAST_CHANGES.items()],
        "",
    ]
    dest = Path(dest)
    dest.write_text("\n".join(header) + yaml.safe_dump(data, sort_keys=False))
    return dest
