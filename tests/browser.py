"""Open a turnbench page in headless Chromium with the network watched: what a report test
asserts on (console errors, page errors, every request made, a screenshot)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS_CHROMIUM = "needs Debian's chromium (bash scripts/setup.sh test installs it)"


@dataclass
class Rendered:
    console: list[str] = field(default_factory=list)
    """Console errors and warnings."""
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    screenshot: Path | None = None


def render_offline(page_path: Path, shot: Path, check: Callable[[object], None] = lambda page: None) -> Rendered:
    """Load the page from its file, run `check(page)` on it, screenshot it full-page."""
    from playwright.sync_api import sync_playwright
    out = Rendered(screenshot=shot)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: out.console.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: out.errors.append(str(e)))
        page.on("request", lambda r: out.requests.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(shot), full_page=True)
        check(page)
        browser.close()
    return out
