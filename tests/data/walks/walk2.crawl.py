"""Crawl the web app as the masked roles of WALK-TTE-PROBE and report any page that shows an arm.

    python walk2.crawl.py BASE_URL MAX_PAGES USER... [--fa]   (e.g. http://127.0.0.1:8811 150 oa_teh bstat --fa)
"""

import re
import sys
from urllib.parse import urljoin, urlparse

from playwright.sync_api import sync_playwright

BASE = sys.argv[1]
LIMIT = int(sys.argv[2])
LANGUAGE = "fa" if "--fa" in sys.argv else "en"
PASSWORD = "Walk2-Str0ng-Passphrase!"  # the walk's throw-away accounts
TITLE = "Early mobilisation versus usual care after hip-fracture surgery"  # names both interventions, not an arm
TITLE_FA = "تحرک زودهنگام در برابر مراقبت معمول پس از جراحی شکستگی لگن"
ARM_WORDS = ["EMOB", "USC", "Early mobilisation", "Usual care", "early mobilisation", "usual care",
             "تحرک زودهنگام", "مراقبت معمول", "Out of bed and walking", "Mobilisation as the ward"]  # fmt: skip
SKIP = re.compile(r"\.pdf|\.png|\.json|\.svg|\.xml|/sign-out|/logout|\.csv|\.zip|download|/export|/set-password"
                  r"|lang=|/profile/preferences")  # fmt: skip
START = ["/", "/participants", "/participants/TEH-085", "/safety", "/analysis", "/exports", "/recruitment",
         "/queries", "/screening", "/data-access", "/audit"]  # fmt: skip


def links(page, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    out = []
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
        u = urlparse(urljoin(BASE + path, href))
        if u.netloc != urlparse(BASE).netloc:
            continue
        q = u.path + (f"?{u.query}" if u.query else "")
        if SKIP.search(q) or re.search(r"[?&]page=([3-9]|\d\d)", q):
            continue
        if re.match(r"/participants/[A-Z]+-\d+", u.path) and not re.match(r"/participants/TEH-(08\d|00[1-3])", u.path):
            continue
        out.append(q)
    return out


def crawl(user: str) -> tuple[list[tuple[str, str, str]], dict[str, object]]:
    found: list[tuple[str, str, str]] = []
    statuses: dict[str, object] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(BASE + "/sign-in")
        page.fill("#username", user)
        page.fill("#password", PASSWORD)
        page.click("form[action='/sign-in'] button[type=submit]")
        page.wait_for_load_state()
        if LANGUAGE != "en":  # the preference every page offers, as a person sets it
            page.goto(BASE + "/")
            page.select_option("#pref-language", LANGUAGE)
            page.click("form.prefs button[type=submit]")
            page.wait_for_load_state()
        queue = list(START)
        while queue and len(statuses) < LIMIT:
            path = queue.pop(0)
            if path in statuses:
                continue
            try:
                r = page.goto(BASE + path)
            except Exception as e:  # a download
                statuses[path] = f"download: {str(e)[:30]}"
                continue
            statuses[path] = r.status if r else None
            if r is None or "html" not in (r.headers.get("content-type") or ""):
                continue
            text = page.content().replace(TITLE, "TITLE").replace(TITLE_FA, "TITLE")
            for word in ARM_WORDS:
                if word in text:
                    i = text.find(word)
                    found.append((path, word, re.sub(r"\s+", " ", text[max(0, i - 150) : i + 80])))
            queue.extend(q for q in links(page, path) if q not in statuses)
        browser.close()
    return found, statuses


for user in [u for u in sys.argv[3:] if u != "--fa"]:
    found, statuses = crawl(user)
    codes = [s for s in statuses.values() if isinstance(s, int)]
    print(f"{user}: {len(statuses)} pages, status counts", {s: codes.count(s) for s in set(codes)})
    print("  5xx:", {k: v for k, v in statuses.items() if isinstance(v, int) and v >= 500})
    print("  4xx:", {k: v for k, v in statuses.items() if isinstance(v, int) and 400 <= v < 500})
    for f in found[:20]:
        print("  LEAK?", f)
    print("  leak hits:", len(found))
