"""Extract the code lists trialwright's SDTM export writes from NCI EVS's ``SDTM Terminology.txt``.

Usage: ``python scripts/extract_sdtm_ct.py "SDTM Terminology.txt" 2025-03-28``

Writes ``src/trialwright/protocol/data/SDTM_CT_<date>.tsv``: the header row and, for each code list named in
``CODELISTS``, its own row and every term's row, unchanged and in the source's order, without the
``CDISC Definition`` column (the export never writes a definition). ``trialwright.protocol.cdisc_ct`` reads it;
NOTICE.md beside it says where the source came from and its SHA-256. Adding a code list here and running the
script again is how another variable's terms become checkable.
"""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

#: The code lists (their CDISC submission values) of every variable the SDTM export writes from CT.
CODELISTS = (
    "ACN", "AESEV", "AGEU", "ARMNULRS", "DOMAIN", "DSCAT", "DSSCAT", "EPOCH", "FREQ", "IECAT", "INTMODEL", "LBTEST",
    "LBTESTCD", "NCOMPLT", "ND", "NRIND", "NY", "OUT", "PROTMLST", "ROUTE", "SEX", "SEXPOP", "SPECTYPE", "STENRF",
    "STYPE", "TBLIND", "TCNTRL", "TINDTP", "TPHASE", "TSPARM", "TSPARMCD", "TTYPE", "UNIT", "VSRESU", "VSTEST",
    "VSTESTCD",
)  # fmt: skip

DROPPED = "CDISC Definition"


def main(source: Path, version: str) -> None:
    with source.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    header, body = rows[0], rows[1:]
    drop = header.index(DROPPED)
    lists = {r[4]: r[0] for r in body if not r[1]}
    missing = sorted(set(CODELISTS) - set(lists))
    if missing:
        raise SystemExit(f"not in {source}: {', '.join(missing)}")
    wanted = {lists[name] for name in CODELISTS}
    kept = [r for r in body if (r[0] in wanted and not r[1]) or r[1] in wanted]
    out = Path(__file__).resolve().parents[1] / "src/trialwright/protocol/data" / f"SDTM_CT_{version}.tsv"
    with out.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        for r in [header, *kept]:
            w.writerow([v for i, v in enumerate(r) if i != drop])
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    print(f"{out}: {len(kept)} rows of {len(wanted)} code lists; source SHA-256 {digest}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
