"""A small FICTIONAL dictionary in MedDRA's ASCII layout ($-delimited, one record a line, each ending in $).

Every term and code here is invented (codes 90000001 onwards); none is MedDRA's. The hierarchy:

    SOC 90100001 Fictional kidney disorders (Fict-Kid)      SOC 90100002 Fictional investigations (Fict-Inv)
      HLGT 90200001 Fictional renal failures                  HLGT 90200002 Fictional renal tests
        HLT 90300001 Fictional acute renal conditions           HLT 90300002 Fictional creatinine analyses
          PT 90000001 Zorbic kidney injury  (primary)  <------    PT 90000001 again (secondary path)
                                                                  PT 90000002 Blorp creatinine raised (primary)
    LLTs: 90000001 Zorbic kidney injury, 90000011 Acute zorbic kidney, 90000012 Zorbic renal lesion (not current)
          -> PT 90000001; 90000002 Blorp creatinine raised, 90000021 Blorp creatinine high -> PT 90000002

PT 90000001 sits under both SOCs; mdhier.asc lists its secondary path first, so coding that takes the first row
instead of the primary flag shows.
"""

from __future__ import annotations

from pathlib import Path

LEGACY7 = "$" * 7  # seven empty legacy-code fields (WHO-ART, HARTS, COSTART, ICD-9, ICD-9-CM, ICD-10, J-ART)

FILES: dict[str, list[str]] = {
    "soc.asc": [
        f"90100001$Fictional kidney disorders$Fict-Kid{LEGACY7}$",
        f"90100002$Fictional investigations$Fict-Inv{LEGACY7}$",
    ],
    "hlgt.asc": [f"90200001$Fictional renal failures{LEGACY7}$", f"90200002$Fictional renal tests{LEGACY7}$"],
    "hlt.asc": [
        f"90300001$Fictional acute renal conditions{LEGACY7}$",
        f"90300002$Fictional creatinine analyses{LEGACY7}$",
    ],
    "pt.asc": [
        f"90000001$Zorbic kidney injury$$90100001{LEGACY7}$",
        f"90000002$Blorp creatinine raised$$90100002{LEGACY7}$",
    ],
    # llt_code, llt_name, pt_code, 6 legacy codes, llt_currency, llt_jart_code
    "llt.asc": [
        "90000001$Zorbic kidney injury$90000001$$$$$$$Y$$",
        "90000011$Acute zorbic kidney$90000001$$$$$$$Y$$",
        "90000012$Zorbic renal lesion$90000001$$$$$$$N$$",
        "90000002$Blorp creatinine raised$90000002$$$$$$$Y$$",
        "90000021$Blorp creatinine high$90000002$$$$$$$Y$$",
    ],
    "soc_hlgt.asc": ["90100001$90200001$", "90100002$90200002$"],
    "hlgt_hlt.asc": ["90200001$90300001$", "90200002$90300002$"],
    "hlt_pt.asc": ["90300002$90000001$", "90300001$90000001$", "90300002$90000002$"],
    "mdhier.asc": [
        "90000001$90300002$90200002$90100002$Zorbic kidney injury$Fictional creatinine analyses$"
        "Fictional renal tests$Fictional investigations$Fict-Inv$$90100001$N$",
        "90000001$90300001$90200001$90100001$Zorbic kidney injury$Fictional acute renal conditions$"
        "Fictional renal failures$Fictional kidney disorders$Fict-Kid$$90100001$Y$",
        "90000002$90300002$90200002$90100002$Blorp creatinine raised$Fictional creatinine analyses$"
        "Fictional renal tests$Fictional investigations$Fict-Inv$$90100002$Y$",
    ],
}


def write_release(folder: Path, changes: dict[str, list[str]] | None = None) -> Path:
    """The fictional release written into ``folder`` (files replaced by ``changes``), as MedDRA ships it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in {**FILES, **(changes or {})}.items():
        (folder / name).write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return folder
