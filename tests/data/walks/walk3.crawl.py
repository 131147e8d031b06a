"""walk3: crawl the web app and the API's GET routes as a role; report anything that names an arm.

usage: python walk3.crawl.py BASE USER PASSWORD LANG MAXPAGES TOKEN_FILE OUT.json
The forbidden patterns are the arm codes, the arm names (en, fa), the pharmacist's attribute labels and ids,
and the recorded lots (SIM-P-..., LOT-...). A match is kept with its context for judging by hand (the trial's
summary names the interventions, so a match there is expected and is not a leak).
"""

import json
import re
import sys
from collections import deque
from urllib.parse import urljoin, urlparse

import httpx
from playwright.sync_api import sync_playwright

BASE, USER, PW, LANG, MAXP, TOKF, OUT = sys.argv[1:8]
MAXP = int(MAXP)
FORBIDDEN = re.compile(
    r"\bN10\b|\bN20\b|\bPBO\b|Nalbuphex 10 mg|Nalbuphex 20 mg|\bPlacebo\b|دارونما|نالبوفکس ۱۰|نالبوفکس ۲۰"
    r"|kit_lot|kit_volume|Kit lot|Oral solution volume|شماره سری کیت|حجم محلول|SIM-P-|LOT-PBO|\b(?:75|150)(?:\.0)? ?mL"
)
SKIP = ("/sign-out", "/logout", "/set-password", "/static/")


def hits(text):
    return [text[max(0, m.start() - 60) : m.end() + 60].replace("\n", " ") for m in FORBIDDEN.finditer(text)]


result = {"user": USER, "lang": LANG, "pages": {}, "api": {}}
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    page = b.new_page()
    page.goto(BASE + "/")
    page.fill("#username", USER)
    page.fill("#password", PW)
    page.click("form[action='/sign-in'] button[type=submit]")
    page.wait_for_load_state()
    if LANG == "fa":
        page.select_option("#pref-language", "fa")
        page.click("form.prefs button[type=submit]")
        page.wait_for_load_state()
    seen, todo = (
        set(),
        deque(
            [
                "/",
                "/participants",
                "/safety",
                "/analysis",
                "/exports",
                "/audit",
                "/queries",
                "/screening",
                "/recruitment",
                "/data-access",
                "/pharmacy",
                "/unblindings",
            ]
        ),
    )
    while todo and len(seen) < MAXP:
        path = todo.popleft()
        if path in seen or any(path.startswith(s) for s in SKIP):
            continue
        seen.add(path)
        try:
            resp = page.goto(BASE + path)
        except Exception as e:  # a download, for instance
            result["pages"][path] = {"status": "error " + type(e).__name__}
            continue
        status = resp.status if resp else 0
        text = page.content() if "html" in (resp.headers.get("content-type", "") if resp else "") else ""
        visible = page.inner_text("body") if text else ""
        result["pages"][path] = {"status": status, "hits": hits(visible) + [h for h in hits(text) if "<" in h][:5]}
        for a in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))") if text else []:
            u = urlparse(urljoin(BASE + path, a))
            if u.netloc == urlparse(BASE).netloc:
                q = u.path + ("?" + u.query if u.query else "")
                if q not in seen:
                    todo.append(q)
    b.close()

with open(TOKF) as fh:
    token = fh.read().strip()
spec = httpx.get(BASE + "/openapi.json").json()
for route, ops in spec["paths"].items():
    if "get" not in ops or "{" in route:
        continue
    r = httpx.get(BASE + route, headers={"Authorization": "Bearer " + token, "Accept-Language": LANG}, timeout=60)
    result["api"][route] = {"status": r.status_code, "hits": hits(r.text)}
with open(OUT, "w") as fh:
    json.dump(result, fh, ensure_ascii=False, indent=1)
pages = result["pages"]
print(
    USER,
    LANG,
    "pages",
    len(pages),
    "5xx",
    sum(1 for v in pages.values() if str(v["status"]).startswith("5")),
    "403",
    sum(1 for v in pages.values() if v["status"] == 403),
    "pages with hits",
    sum(1 for v in pages.values() if v.get("hits")),
    "api",
    len(result["api"]),
    "api 200",
    sum(1 for v in result["api"].values() if v["status"] == 200),
    "api 5xx",
    sum(1 for v in result["api"].values() if v["status"] >= 500),
    "api with hits",
    sum(1 for v in result["api"].values() if v["hits"]),
)
