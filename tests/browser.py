"""A real browser for tests: Debian's chromium (``/usr/bin/chromium``, package ``chromium``) driven by
Playwright, never a downloaded browser. The fixtures ``chromium_browser`` and ``browser_page`` in
conftest.py build on this module; any test of a page the hub serves (the phone page, the console) can
use them. Also here: axe-core from the ``axe-playwright-python`` wheel, injected from disk (no CDN),
WCAG contrast arithmetic, and a TCP proxy that adds latency.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("KIOSK_TEST_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}  # a common phone, CSS pixels
SMALL_PHONE = {"width": 360, "height": 640}  # the smallest phone still common
# The axe rules run on every state: WCAG 2.1 A and AA; what counts is serious or critical.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
AXE_FAILING_IMPACTS = ("serious", "critical")


def chromium_missing() -> str | None:
    """Why no browser test can run here, or None. CI installs chromium (.ci/run), so there a missing
    browser is a failure, not a skip."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return None
    return f"{CHROMIUM} not found: apt-get install chromium (or set KIOSK_TEST_CHROMIUM)"


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """A headless chromium for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def set_default_font_size(page: Any, pixels: int) -> None:
    """The browser's font-size setting (Chrome: Settings → Appearance → Font size), as a user who
    needs larger text sets it; 16 is the default."""
    session = page.context.new_cdp_session(page)
    session.send("Page.setFontSizes", {"fontSizes": {"standard": pixels, "fixed": pixels}})


_AXE_SOURCE: str | None = None


def axe_violations(page: Any, impacts: tuple[str, ...] = AXE_FAILING_IMPACTS) -> list[dict[str, Any]]:
    """axe-core's violations of the page as it is now, those of the given impacts, each as
    ``{"id", "impact", "help", "targets"}``."""
    global _AXE_SOURCE
    if _AXE_SOURCE is None:
        _AXE_SOURCE = (resources.files("axe_playwright_python") / "axe.min.js").read_text(encoding="utf-8")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_AXE_SOURCE)  # through the DevTools protocol: the page's CSP does not apply
    results = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        AXE_TAGS,
    )
    return [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "targets": [n["target"] for n in v["nodes"]][:5],
        }
        for v in results["violations"]
        if v["impact"] in impacts
    ]


def axe_violations_without_script(page: Any, impacts: tuple[str, ...] = AXE_FAILING_IMPACTS) -> list[dict]:
    """axe on a page whose context has JavaScript off (where axe cannot run): on a copy of its
    current markup, at the same size, in a context of its own with JavaScript on."""
    browser = page.context.browser
    copy_context = browser.new_context(viewport=page.viewport_size, locale="zh-CN")
    try:
        copy = copy_context.new_page()
        copy.set_content(page.content())
        return axe_violations(copy, impacts)
    finally:
        copy_context.close()


def parse_css_color(text: str) -> tuple[float, float, float, float]:
    """``rgb(r, g, b)`` or ``rgba(r, g, b, a)`` as computed styles give them."""
    inside = text[text.index("(") + 1 : text.rindex(")")].replace("/", ",")
    parts = [float(p) for p in inside.replace(",", " ").split()]
    r, g, b = parts[:3]
    return r, g, b, parts[3] if len(parts) > 3 else 1.0


def contrast_ratio(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two opaque computed colours."""

    def luminance(color: str) -> float:
        channels = []
        for c in parse_css_color(color)[:3]:
            s = c / 255
            channels.append(s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4)
        r, g, b_ = channels
        return 0.2126 * r + 0.7152 * g + 0.0722 * b_

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


class DelayingProxy:
    """A TCP relay on 127.0.0.1 that holds every chunk for ``delay_s`` in each direction: a slow
    mobile network between a real browser and a real server. ``delay_s`` may be changed at any time."""

    def __init__(self, upstream_port: int, delay_s: float):
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.closed = False
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                time.sleep(self.delay_s)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
