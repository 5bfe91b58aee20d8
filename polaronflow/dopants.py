"""Nominal electrons donated by dopants: the one table, importable without pymatgen.

An alkali (Li, Na, K) gives 1 electron, an alkaline earth (Mg, Ca) or Zn gives 2, Al gives 3;
a proton on a bridging O (O–H) gives 1.  Each electron is expected to localise on a host W as a
W5+ small polaron.
"""

from __future__ import annotations

#: Cations placed in A-site cavities, with the electrons each donates to the host.
ION_ELECTRONS: dict[str, int] = {"Li": 1, "Na": 1, "K": 1, "Mg": 2, "Ca": 2, "Zn": 2, "Al": 3}
#: Electrons donated by one proton (H+ on a bridging O).
PROTON_ELECTRONS = 1
#: Every dopant element, cations and H, with the electrons one atom donates.
DOPANT_ELECTRONS: dict[str, int] = {**ION_ELECTRONS, "H": PROTON_ELECTRONS}
