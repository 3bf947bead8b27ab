"""Debian's chromium driven by Playwright for the example shop's browser tests.

One launch policy for every browser test: the system chromium (never a downloaded browser),
headless, a Japanese locale; a clear skip on a laptop without it, a failure on CI
(``CROSSSELL_REQUIRE_SERVICES=1``), where it must run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import REQUIRED

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls there
# unless told that this (test-only) use is fine.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def chromium() -> Iterator[Any]:
    """A launched browser, closed after the test. Request it after the fixtures that write
    to the database: ORM work belongs before Playwright's event loop starts."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if REQUIRED:
            pytest.fail(f"{message}; CROSSSELL_REQUIRE_SERVICES=1, so this cannot be skipped")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Any, width: int, height: int = 900, **options: Any) -> Iterator[Any]:
    """A page in a fresh Japanese context of that viewport, closed afterwards."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        locale="ja-JP",
        device_scale_factor=1,
        **options,
    )
    try:
        yield context.new_page()
    finally:
        context.close()
