"""A small FICTIONAL ATC index in the CSV layout trialwright reads (atc_code,level,name; docs/coding.md).

Every name here is invented and the anatomical group Z is one WHO does not use; none of it is the WHO's index:

    Z        Fictional blood and pain
      Z01      Fictional antithrombotics
        Z01A     Fictional antithrombotic agents
          Z01AB    Fictional heparin group
            Z01AB05  Zorbaparin
      Z02      Fictional analgesics
        Z02B     Fictional other analgesics
          Z02BE    Fictional anilides
            Z02BE01  Blorpamol
"""

from __future__ import annotations

from pathlib import Path

LINES = [
    "atc_code,level,name",
    "Z,1,Fictional blood and pain",
    "Z01,2,Fictional antithrombotics",
    "Z01A,3,Fictional antithrombotic agents",
    "Z01AB,4,Fictional heparin group",
    "Z01AB05,5,Zorbaparin",
    "Z02,2,Fictional analgesics",
    "Z02B,3,Fictional other analgesics",
    "Z02BE,4,Fictional anilides",
    "Z02BE01,5,Blorpamol",
]


def write_index(path: Path, lines: list[str] | None = None) -> Path:
    """The fictional index (or ``lines``) written to ``path`` as UTF-8 CSV."""
    path.write_text("\n".join(LINES if lines is None else lines) + "\n", encoding="utf-8")
    return path
