"""The hall's big screen in a real browser (Playwright driving Debian's chromium): today's figures, a
rating reaching the screen within 2 s, a hub restart (the network drop) survived by the page by itself,
nothing personal on it, and the screen key. Screenshot at 1920×1080 in docs/screenshots/."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import figures_data as data
import pytest
import requests
import uvicorn
from test_hub_support import free_port, wait_until

from hub.app import create_app
from hub.figures.screen import new_screen_key
from hub.storage import HubStore, database_url

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect if hasattr(playwright_api, "expect") else None
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def shots_folder() -> Path:
    """docs/screenshots/ with KIOSK_REFRESH_SCREENSHOTS=1 (the pictures hold today's date), else a scratch one."""
    if os.environ.get("KIOSK_REFRESH_SCREENSHOTS") == "1":
        return SHOTS
    folder = Path(tempfile.gettempdir()) / f"kiosk-figures-shots-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Hub:
    """The hub on a fixed port, stopped and started again like a restart (or a network drop)."""

    def __init__(self, store: HubStore):
        self.store, self.port = store, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        config = uvicorn.Config(
            create_app(self.store),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            log_config=None,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, what="hub start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "the hub did not stop with a big screen connected"


class Window:
    """A window's log, written now, uploaded event by event."""

    def __init__(self, store: HubStore, device: str, window: str, staff=("0371", "王晓燕")):
        self.store, self.device, self.window, self.items = store, device, window, []
        self.log_id = f"00000000-0000-4000-8000-{abs(hash(device)) % 10**12:012d}"
        self.add("staff_signin", {"staff_no": staff[0], "staff_name": staff[1]})
        self.staff = staff

    def add(self, kind: str, payload: dict) -> None:
        at = datetime.now().astimezone().isoformat(timespec="milliseconds")
        self.items.append((kind, at, payload))
        events = data.chain(self.log_id, self.items)
        self.store.ingest(self.device, self.log_id, events[-1:])

    def serve_and_rate(self, satisfaction: int, case_no: str) -> None:
        self.add("case_opened", data.case(case_no, "I1"))
        case_seq = len(self.items)
        self.add("rating", data.rating(case_seq, *self.staff, self.window, case_no, "I1", satisfaction))


@pytest.fixture
def hall(tmp_path):
    store = HubStore(database_url(tmp_path / "hub", None))
    for device in (data.W03, data.W05, "XHA-W07"):
        store.add_device(device)
    hub = Hub(store)
    yield hub, store
    if hub.thread.is_alive():
        hub.stop()
    store.close()


def test_the_screen_key(hall):
    hub, store = hall
    assert requests.get(f"{hub.url}/screen", timeout=5).status_code == 401
    key = new_screen_key(store.engine)
    assert requests.get(f"{hub.url}/screen?key=wrong", timeout=5).status_code == 401
    assert requests.get(f"{hub.url}/screen/events?key=wrong", timeout=5).status_code == 401
    page = requests.get(f"{hub.url}/screen?key={key}", timeout=5)
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert new_screen_key(store.engine) != key  # a new key replaces it
    assert requests.get(f"{hub.url}/screen?key={key}", timeout=5).status_code == 401


def test_live_figures_a_rating_within_2_s_and_a_restart_survived(hall):
    hub, store = hall
    key = new_screen_key(store.engine)
    w03 = Window(store, data.W03, "03")
    w05 = Window(store, data.W05, "05", ("0402", "李强"))
    w07 = Window(store, "XHA-W07", "07", ("0515", "赵敏"))
    for i, s in enumerate((5, 5, 4, 3, 2)):
        w03.serve_and_rate(s, f"C3-{i}")
    for i, s in enumerate((5, 4, 4)):
        w05.serve_and_rate(s, f"C5-{i}")
    w07.serve_and_rate(5, "C7-0")
    w07.add("case_opened", data.case("C7-1", "I1"))
    w07.add("rating_skipped", {"case_seq": len(w07.items), "why": "timeout"})

    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{hub.url}/screen?key={key}")
        page.wait_for_selector("#link.ok")
        assert page.inner_text("#t-services") == "10" and page.inner_text("#t-rated") == "9"
        assert "03号窗口" in page.inner_text("#windows")
        content = page.content()
        for personal in ("王晓燕", "李强", "0371", "C3-0"):  # nothing personal on the hall's screen
            assert personal not in content
        # Nothing is clipped: the page fits the screen.
        size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        assert size == [1920, 1080]
        page.screenshot(path=str(shots_folder() / "figures-screen.png"))

        started = time.monotonic()
        w05.serve_and_rate(5, "C5-9")
        expect(page.locator("#t-rated")).to_have_text("10", timeout=2000)
        latency = time.monotonic() - started
        assert latency < 2.0, latency

        # The network drops (the hub goes away); a rating arrives meanwhile; the hub comes back.
        hub.stop()
        page.wait_for_selector("#link.down", timeout=10000)
        w03.serve_and_rate(1, "C3-9")
        hub.start()
        expect(page.locator("#t-rated")).to_have_text("11", timeout=15000)
        assert page.inner_text("#link") == "实时"
        browser.close()


def test_a_hall_of_60_windows_fits_the_screen(hall):
    hub, store = hall
    key = new_screen_key(store.engine)
    for n in range(60):
        device = f"XHA-W{n + 10:02d}"
        store.add_device(device)
        Window(store, device, f"{n + 10:02d}").serve_and_rate(5, f"K{n}")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(f"{hub.url}/screen?key={key}")
        page.wait_for_selector("#link.ok")
        assert page.locator("#windows .win").count() == 60
        bottom = page.evaluate(
            "Math.max(...[...document.querySelectorAll('#windows .win')].map(e => e.getBoundingClientRect().bottom))"
        )
        footer = page.evaluate("document.querySelector('footer').getBoundingClientRect().top")
        assert bottom <= footer, (bottom, footer)  # every window above the footer: nothing clipped
        page.screenshot(path=str(shots_folder() / "figures-screen-60-windows.png"))
        browser.close()
