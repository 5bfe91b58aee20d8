"""The electronic state a run leaves in its WAVECAR stand-in, and VASP's rules for reading it.

VASP starts from a WAVECAR when ``ISTART >= 1`` and a non-empty WAVECAR is present; ``ISTART``
defaults to 1 when a WAVECAR is present and to 0 otherwise (VASP wiki, ISTART). A run that
reads a WAVECAR continues the wavefunctions it holds, so the initial moments in MAGMOM are
ignored (VASP wiki, MAGMOM: MAGMOM only sets the initial magnetisation of a run that starts
from scratch). Without a WAVECAR (or with ``ISTART = 0``) the MAGMOM seeds decide where the
moments start.

The emulator has no wavefunctions, so its WAVECAR stand-in holds what a continuation needs:
which W carry a polaron and with which spin, how many electrons are delocalised, and the cell
it belongs to (atom count and species). The stand-in is text: the synthetic marker on the
first line, then one JSON line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from polaronflow.analysis.rundata import SYNTHETIC_MARKER

WAVECAR = "WAVECAR"


@dataclass
class ElectronicState:
    """What the WAVECAR stand-in carries from one run to the next.

    Attributes
    ----------
    species
        Element per site of the run that wrote it (a different cell is not continued).
    ispin
        ISPIN of that run (a non-spin-polarised WAVECAR carries no moments).
    polarons
        ``(site, spin sign)`` of every W that carried a polaron (site indices from 0).
    free_electrons
        Dopant electrons that were delocalised in the conduction band.
    u_on_w
        The U on W d of that run (eV), for the record.
    """

    species: list[str]
    ispin: int
    polarons: list[tuple[int, float]] = field(default_factory=list)
    free_electrons: int = 0
    u_on_w: float = 0.0

    def to_text(self) -> str:
        """The stand-in's text: the marker line, then the state as one JSON line."""
        payload = {
            "species": self.species,
            "ispin": self.ispin,
            "polarons": [[int(s), float(sign)] for s, sign in self.polarons],
            "free_electrons": int(self.free_electrons),
            "u_on_w": float(self.u_on_w),
        }
        return (
            f"{SYNTHETIC_MARKER}: WAVECAR stand-in written by the polaronflow emulator; it holds "
            "no wavefunctions, only the state a continuation needs\n" + json.dumps(payload) + "\n"
        )


@dataclass
class StartUp:
    """How a run starts: from scratch (MAGMOM seeds act) or from a WAVECAR."""

    reads_wavecar: bool
    #: The state read (None: started from scratch, or a WAVECAR without a usable state).
    state: ElectronicState | None
    note: str


def _parse(text: str) -> ElectronicState | None:
    for line in text.splitlines()[1:]:
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
                return ElectronicState(
                    species=list(data["species"]),
                    ispin=int(data["ispin"]),
                    polarons=[(int(s), float(sign)) for s, sign in data["polarons"]],
                    free_electrons=int(data["free_electrons"]),
                    u_on_w=float(data.get("u_on_w", 0.0)),
                )
            except (ValueError, KeyError, TypeError):
                return None
    return None


def startup(directory: Path, incar: dict, species: list[str]) -> StartUp:
    """Decide, as VASP does, whether this run reads the WAVECAR in ``directory``.

    Parameters
    ----------
    directory
        The job folder.
    incar
        Its INCAR tags (``ISTART`` read; default 1 if a WAVECAR is present, else 0).
    species
        Element per site of this run's POSCAR.

    Returns
    -------
    StartUp
        Whether a WAVECAR is read and the state it holds, if usable for this cell.
    """
    path = directory / WAVECAR
    present = path.is_file() and path.stat().st_size > 0
    istart = incar.get("ISTART")
    istart = (1 if present else 0) if istart is None else int(istart)
    if istart < 1:
        return StartUp(False, None, "ISTART = 0: new wavefunctions; MAGMOM sets the moments")
    if not present:
        # VASP falls back to random wavefunctions when the file is missing or empty.
        return StartUp(False, None, "no WAVECAR to read: new wavefunctions; MAGMOM acts")
    state = _parse(path.read_text(errors="replace"))
    if state is None:
        return StartUp(True, None, "WAVECAR read, but it holds no emulator state")
    if state.species != list(species):
        return StartUp(True, None, "WAVECAR of a different cell: its state is not continued")
    return StartUp(True, state, "WAVECAR read: the previous state continues, MAGMOM ignored")
