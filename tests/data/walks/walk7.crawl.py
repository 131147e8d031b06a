"""Walk 7: fetch every page and API answer as each role a double-blind trial masks, and look for the arms.

Run against a served walk-7 trial (trialwright serve --port 8717) with the tokens in /tmp/w7/tokens.txt
(`user token NAME`), the password of every account in W7_PASSWORD. Prints each hit (role, route, the match).
"""
import os
import re
import sys

import httpx

BASE = "http://127.0.0.1:8717"
PASSWORD = os.environ.get("W7_PASSWORD", "Harbour-Lantern-47!")
MASKED = os.environ.get("W7_USERS", "cora,ivan,liv,mona,oscar,dora,bea,adm1,cody").split(",")
TOKENS = os.environ.get("W7_TOKENS", "/tmp/w7/tokens.txt")  # noqa: S108
ARM = re.compile(r"\bPBO\b|\bLUM\b|Lumifatine 100 mg|placebo_comparator|\"arm\":\s*\"(?!masked)[^\"]+\"|"
                 r"Placebo tablets|\"arm_code\":\s*\"[^\"]+\"", re.I)
PID = sys.argv[1] if len(sys.argv) > 1 else "TBZ-003"
PAGES = ["/", "/participants", f"/participants/{PID}", f"/participants/{PID}/visits/baseline/forms/first_dose",
         f"/participants/{PID}/visits/week12/forms/fatigue", "/queries", "/safety", "/safety/listing.csv",
         "/screening", "/screening.csv", "/work", "/unblindings", "/admin/audit", "/admin/audit?participant=" + PID,
         "/analysis", "/analysis/results.json", "/analysis/report.html", "/data/matrix", "/data-management",
         "/data-management/readiness", f"/data/casebook/{PID}", "/recruitment", "/exports", "/data-access",
         "/adverse-events/AE-0041", "/coding", "/randomization", "/dsmb", "/profile"]
API = ["/api/v1/participants", f"/api/v1/participants/{PID}/visits", f"/api/v1/participants/{PID}/randomization",
       f"/api/v1/participants/{PID}/casebook", f"/api/v1/participants/{PID}/visits/baseline/forms/first_dose",
       "/api/v1/audit", f"/api/v1/audit?participant={PID}", "/api/v1/queries", "/api/v1/adverse-events",
       "/api/v1/adverse-events/AE-0041", "/api/v1/safety/listing", "/api/v1/safety/tables", "/api/v1/unblindings",
       "/api/v1/analysis", "/api/v1/randomization/status", "/api/v1/randomization/records", "/api/v1/me",
       "/api/v1/trial", "/api/v1/screenings", "/api/v1/recruitment/status", "/api/v1/trial/readiness"]


def tokens() -> dict[str, str]:
    out = {}
    with open(TOKENS, encoding="utf-8") as f:
        for line in f:
            name, _, tok = line.strip().partition(" ")
            out[name] = tok
    return out


def main() -> None:
    toks = tokens()
    for user in MASKED:
        c = httpx.Client(base_url=BASE, follow_redirects=True, timeout=120)
        page = c.get("/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        r = c.post("/sign-in", data={"csrf_token": csrf, "next": "/", "username": user, "password": PASSWORD})
        if "sign-in" in str(r.url):
            print(user, "sign-in failed")
            continue
        codes = {}
        for p in PAGES:
            r = c.get(p)
            codes.setdefault(r.status_code, []).append(p)
            for m in set(ARM.findall(r.text)):
                print(f"HIT page {user} {p} {r.status_code}: {m!r}")
        for p in API:
            r = httpx.get(BASE + p, headers={"Authorization": f"Bearer {toks[user]}"}, timeout=120)
            codes.setdefault(r.status_code, []).append(p)
            for m in set(ARM.findall(r.text)):
                print(f"HIT api {user} {p} {r.status_code}: {m!r}")
        print(user, {k: len(v) for k, v in codes.items()}, "500s:", codes.get(500, []))


if __name__ == "__main__":
    main()
