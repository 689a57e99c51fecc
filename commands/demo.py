"""``kiosk demo``: a hub, the simulated devices, the sync agent and the kiosk at once, on an embedded default.

Everything lives in a temporary folder: a ``kiosk hub`` process with a demo device and the roster of
``assets/demo/roster.csv`` (photos drawn here), the pseudo-terminal ``Simulator``, a ``kiosk sync``
process and the kiosk window in this process. Without a display (or with ``--offscreen``) a scripted
tour plays: badge in, a rate request, a good rating on the keypad, a bad rating with reasons on the
touch screen, the keypad unplugged and replugged, a hub outage and its recovery. Each step is printed
and each page saved as a PNG; the tour ends with the hub's ratings export and exits 1 unless the hub
holds every rating of the tour exactly once. The hub reports upward (the ``shandong`` profile) to a
stand-in province started here, and the tour ends by showing what the province holds, exactly once
each. With a display the same tour plays at a human pace, then
the window stays open with a new case after each rating. Ctrl-C stops every process it started.

Qt is imported only when the window is made, so ``Hub`` serves tests that have no use for a window.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from PIL import Image, ImageDraw

from core.store import EventLog
from drivers.sim import Simulator
from kiosk.flow import DEBOUNCE_S

from .doctor import FAIL, check_display
from .hubprocess import STOP_TIMEOUT_S, HubProcess, HubProcessError, kiosk_command

ASSETS = Path(__file__).resolve().parent.parent / "kiosk" / "assets" / "demo"
DEVICE_ID = "DEMO-W03"
AREA_CODE = "370211"
DEPT_CODE = "11370211MB0000001X"  # a made-up 统一社会信用代码 for the demo's department
UPSTREAM_PROFILE = "shandong"  # the seed's province: the demo reports to a stand-in of its interface
UPSTREAM_APP = "DEMO-APPMARK"
UPSTREAM_TIMEOUT_S = 60.0
WINDOW_SIZE = (1280, 800)
STARTUP_TIMEOUT_S = 60.0
STEP_TIMEOUT_S = 30.0
# While the hub is down the agent backs off (up to 60 s, jittered); recovery may take that long.
RECOVERY_TIMEOUT_S = 120.0
POLL_S = 0.02
TOUR_PACE_S = 2.5  # with a display: how long each step stays on screen
PHOTO_SIZE = (240, 320)


class DemoError(Exception):
    """The demo could not go on; the message says which step and why."""


@dataclass(frozen=True)
class TourCase:
    ticket: str
    case_no: str
    item_code: str
    item_name: str


DEMO_SECTION = "ZHSL"
DEMO_SUPERVISOR = "demo-supervisor"
TOUR_CASES = (
    TourCase("A012", "370211202611280101", "11370211MB0001234X", "营业执照变更登记"),
    TourCase("A013", "370211202611280102", "11370211MB0005678Y", "不动产登记（二手房转移登记）"),
    TourCase("A014", "370211202611280103", "11370211MB0009012Z", "社会保障卡补换"),
    TourCase("A015", "370211202611280104", "11370211MB0003456W", "居民身份证换领"),
)


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, pump: Callable[[], None] | None = None
):
    """Poll ``condition`` until it holds; DemoError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        if pump is not None:
            pump()
        time.sleep(POLL_S)


def run_kiosk(*args: str) -> str:
    """Run a ``kiosk`` subcommand to completion; its output, or DemoError with its error message."""
    result = subprocess.run(kiosk_command(*args), capture_output=True, text=True, timeout=STARTUP_TIMEOUT_S)
    if result.returncode != 0:
        raise DemoError(f"kiosk {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


class Child:
    """A long-running ``kiosk`` subcommand; its output goes to a log file in the demo folder."""

    def __init__(self, name: str, args: list[str], log_path: Path):
        self.name, self.args, self.log_path = name, args, log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(kiosk_command(*self.args), stdout=out, stderr=subprocess.STDOUT)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def check_alive(self) -> None:
        if self.process is not None and not self.running():
            tail = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            raise DemoError(f"{self.name} exited with status {self.process.returncode}: " + " | ".join(tail))


class Hub:
    """A reference hub on 127.0.0.1 with its data in ``folder``; stop and start it again at will."""

    console_password = ""
    console_token = ""

    def __init__(self, folder: Path, admin_token: str | None = None, config: Path | None = None):
        self.data = folder / "hub"
        self.admin_token = admin_token or secrets.token_hex(16)
        self.process = HubProcess(
            self.data, admin_token=self.admin_token, log_path=folder / "hub.log", config=config
        )
        self.port, self.url = self.process.port, self.process.url

    def command(self, *args: str) -> str:
        """``kiosk hub ARGS --data DIR`` (device add, roster import, key export)."""
        return run_kiosk("hub", *args, "--data", str(self.data))

    def add_device(self, device_id: str, key_file: Path) -> None:
        secret = self.command(
            "device", "add", device_id, "--area-code", AREA_CODE, "--dept-code", DEPT_CODE
        ).strip()
        key_file.write_text(secret + "\n", encoding="ascii")

    def healthy(self) -> bool:
        return self.process.healthy()

    def start(self) -> None:
        try:
            self.process.start(STARTUP_TIMEOUT_S)
        except HubProcessError as e:
            raise DemoError(str(e)) from None

    def stop(self) -> None:
        self.process.stop()

    def ratings(self) -> list[dict[str, Any]]:
        """The operator's export (GET /api/v1/ratings, JSON)."""
        response = requests.get(
            f"{self.url}/api/v1/ratings",
            params={"format": "json"},
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["ratings"]


# --- the embedded default ---------------------------------------------------------------------------


def draw_avatar(seed: str) -> bytes:
    """A plain head-and-shoulders silhouette on a colour picked from ``seed``, as PNG bytes."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    background = (90 + digest[0] % 100, 110 + digest[1] % 100, 150 + digest[2] % 90)
    figure = tuple(min(255, c + 70) for c in background)
    width, height = PHOTO_SIZE
    image = Image.new("RGB", PHOTO_SIZE, background)
    draw = ImageDraw.Draw(image)
    head = width * 0.22
    draw.ellipse((width / 2 - head, height * 0.18, width / 2 + head, height * 0.18 + 2 * head), fill=figure)
    draw.ellipse((width * 0.12, height * 0.62, width * 0.88, height * 1.25), fill=figure)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def demo_roster() -> list[dict[str, str]]:
    """The rows of the demo roster: card, staff_no, name, title, photo."""
    with (ASSETS / "roster.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def prepare(folder: Path, hub: Hub, sim: Simulator, *, thanks_s: int) -> Path:
    """The demo's roster (with photos), hub registration and kiosk.toml in ``folder``; the config path."""
    roster = folder / "roster" / "roster.csv"
    roster.parent.mkdir(parents=True)
    shutil.copyfile(ASSETS / "roster.csv", roster)
    for row in demo_roster():
        photo = roster.parent / row["photo"]
        photo.parent.mkdir(parents=True, exist_ok=True)
        photo.write_bytes(draw_avatar(row["staff_no"]))
    hub.command("dept", "add", DEMO_SECTION, "综合受理科")
    hub.add_device(DEVICE_ID, folder / "device.key")
    hub.command("device", "dept", DEVICE_ID, DEMO_SECTION)
    hub.console_password = hub.command("user", "add", DEMO_SUPERVISOR, "--role", "supervisor").split()[-1]
    hub.console_token = hub.command("user", "token", DEMO_SUPERVISOR).strip()
    (folder / "hub.pub").write_text(hub.command("key", "export").strip() + "\n", encoding="ascii")
    hub.command("roster", "import", str(roster))
    template = string.Template((ASSETS / "kiosk.toml").read_text(encoding="utf-8"))
    config = folder / "kiosk.toml"
    config.write_text(
        template.substitute(
            device_id=DEVICE_ID, serial=sim.config_fragment(), hub_url=hub.url, thanks_s=thanks_s
        ),
        encoding="utf-8",
    )
    return config


# --- the tour ---------------------------------------------------------------------------------------


class ErrorRecorder(logging.Handler):
    """Keeps every error the kiosk logs during the tour: one means something was lost, so the tour fails."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


class Tour:
    """The scripted visit, played on the live window through the simulated devices and the touch screen."""

    def __init__(
        self, app: Any, window: Any, sim: Simulator, hub: Hub, sync: Child, out: Path, pace_s: float
    ):
        self.app, self.window, self.sim, self.hub, self.sync, self.out = app, window, sim, hub, sync, out
        self.kiosk = window.kiosk
        self.log: EventLog = window.kiosk.log  # the kiosk's own connection: this (GUI) thread only
        self.pace_s = pace_s
        self.interrupted = False
        self.answers: list[str] = []
        self.shots = 0
        self.step = 0

    # --- plumbing

    def pump(self) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.app.processEvents()
        self.sync.check_alive()

    def wait(self, condition: Callable[[], bool], what: str, timeout_s: float = STEP_TIMEOUT_S) -> None:
        wait_until(condition, timeout_s, what, self.pump)

    def hold(self) -> None:
        """With a display, leave the screen as it is for a moment so that people can follow."""
        if self.pace_s:
            end = time.monotonic() + self.pace_s
            self.wait(lambda: time.monotonic() >= end, "nothing")

    def say(self, text: str) -> None:
        self.step += 1
        print(f"[{self.step}] {text}", flush=True)

    def screenshot(self, name: str) -> None:
        self.shots += 1
        path = self.out / f"{self.shots:02d}-{name}.png"
        # What the screen shows: the layout requests a click or a new page posted are handled before a
        # frame is painted; grabbed before them, the reasons panel ran 12 px under the bottom buttons.
        self.app.processEvents()
        if not self.window.grab().save(str(path)):
            raise DemoError(f"cannot write the screenshot {path}")
        print(f"    screenshot {path}", flush=True)
        self.hold()

    def on_page(self, page: str) -> bool:
        return self.window.view is not None and self.window.view.page == page

    def click(self, object_name: str) -> None:
        from PySide6.QtWidgets import QAbstractButton

        button = self.window.findChild(QAbstractButton, object_name)
        if button is None or not button.isVisible():
            raise DemoError(f"no visible button {object_name} on the {self.window.view.page} page")
        button.click()

    def keypad_answered(self, expected: str) -> bool:
        self.answers += self.sim.keypad_answers()
        return expected in self.answers

    def port_states(self) -> str:
        """This kiosk's own view of its ports, for a message when waiting on them times out."""
        return "; ".join(
            f"{s.name} {s.state} on {s.port}" + (f" ({s.detail})" if s.detail else "")
            for s in self.kiosk.devices.status()
        )

    def wait_for_ports(self, *names: str) -> None:
        """Until this kiosk reads from its ports ``names`` (all when none are named): its own port states,
        not whether anyone holds the pseudo-terminals. A timeout says what each port is doing."""
        wanted = set(names) or set(self.sim.paths)
        try:
            self.wait(
                lambda: all(s.state == "connected" for s in self.kiosk.devices.status() if s.name in wanted),
                f"the kiosk to open {', '.join(sorted(wanted))}",
            )
        except DemoError as e:
            raise DemoError(f"{e}; the kiosk's ports: {self.port_states()}") from None

    def device_state(self, name: str) -> str:
        return next(s.state for s in self.kiosk.devices.status() if s.name == name)

    def sync_state(self) -> dict[str, Any]:
        return self.log.get_state("sync") or {}

    def request_rating(self, case: TourCase) -> None:
        self.wait(lambda: self.on_page("ready"), "the ready page")
        self.sim.call(case.ticket)
        self.sim.rate(case.case_no, ticket=case.ticket, item_code=case.item_code, item_name=case.item_name)
        self.wait(
            lambda: self.on_page("rate") and self.window.view.case.case_no == case.case_no,
            f"the rate page for case {case.case_no}",
        )
        # A citizen reads the page before pressing; the flow ignores presses quicker than that.
        shown = time.monotonic()
        self.wait(lambda: time.monotonic() - shown > DEBOUNCE_S, "the citizen to read the page")

    # --- the story

    def play(self) -> None:
        self.say("The kiosk starts; nobody serves at window 03 yet")
        self.wait_for_ports()
        self.wait(lambda: self.on_page("paused"), "the paused page")
        self.screenshot("paused")

        staff = demo_roster()[0]
        self.say(f"{staff['name']} (工号 {staff['staff_no']}) badges in with card {staff['card']}")
        self.sim.swipe(staff["card"])
        self.wait(
            lambda: self.on_page("ready") and self.window.view.staff is not None,
            "the staff member to sign in",
        )
        self.screenshot("ready")

        good, bad, after_replug, during_outage = TOUR_CASES
        self.say(f"Ticket {good.ticket} is served; the queue system asks for a rating of {good.item_name}")
        self.request_rating(good)
        self.screenshot("rate")
        self.say("The citizen presses 5 (非常满意) on the keypad")
        self.sim.press(5)
        self.wait(lambda: self.keypad_answered("OK5"), "the keypad to hear OK5")
        self.wait(lambda: self.on_page("thanks"), "the thanks page")
        self.screenshot("thanks")

        self.say(f"Ticket {bad.ticket} ({bad.item_name}): the citizen touches 不满意 and picks two reasons")
        self.request_rating(bad)
        self.click("rate_2")
        self.wait(lambda: self.on_page("reasons"), "the reasons page")
        self.click(f"reason_{self.kiosk.config.reasons[2].code}")
        self.click(f"reason_{self.kiosk.config.reasons[3].code}")
        self.screenshot("reasons")
        self.click("reasons_submit")
        self.wait(lambda: self.on_page("thanks"), "the thanks page")
        self.screenshot("thanks-bad")

        self.say("The keypad's USB cable is pulled out")
        self.sim.unplug("keypad")
        self.wait(lambda: self.device_state("keypad") != "connected", "the kiosk to notice")
        print(
            f"    the kiosk sees the keypad as {self.device_state('keypad')!r} and keeps retrying", flush=True
        )
        self.say("... and plugged back in (a new /dev/pts, the same stable name)")
        self.sim.replug("keypad")
        self.wait_for_ports("keypad")
        self.request_rating(after_replug)
        self.say(f"Ticket {after_replug.ticket}: the citizen presses 4 (满意) on the replugged keypad")
        self.sim.press(4)
        self.wait(lambda: self.keypad_answered("OK4"), "the keypad to hear OK4")

        self.say("The hub goes down")
        self.hub.stop()
        self.request_rating(during_outage)
        self.say(f"Ticket {during_outage.ticket}: the citizen touches 非常满意 while the hub is down")
        self.click("rate_5")
        self.wait(lambda: self.sync_state().get("state") == "offline", "the sync agent to notice the outage")
        print(
            f"    sync: offline, {self.sync_state().get('pending')} events wait in the local log", flush=True
        )
        self.say("The hub comes back; the agent delivers the backlog")
        self.hub.start()
        self.wait(
            lambda: (
                self.sync_state().get("state") == "ok"
                and self.sync_state()["acked_seq"] >= self.log.head_seq()
            ),
            "the sync agent to deliver everything",
            RECOVERY_TIMEOUT_S,
        )
        print(
            f"    sync: ok, the hub holds seq {self.sync_state()['acked_seq']} of {self.log.head_seq()}",
            flush=True,
        )

    def export(self) -> list[dict[str, Any]]:
        """Print the hub's ratings export; DemoError unless it holds each tour rating exactly once."""
        self.say("The hub's ratings export (GET /api/v1/ratings)")
        ratings = self.hub.ratings()
        (self.out / "ratings.json").write_text(
            json.dumps(ratings, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        columns = ("projectNo", "taskName", "satisfaction", "evalDetail", "staffName", "assessTime", "pf")
        for row in [columns, *([str(r[c]) for c in columns] for r in ratings)]:
            print("    " + "  ".join(row), flush=True)
        counts = Counter(r["projectNo"] for r in ratings)
        tour = [case.case_no for case in TOUR_CASES]
        wrong = {case: counts[case] for case in tour if counts[case] != 1}
        extra = sorted(set(counts) - set(tour))
        if wrong or extra:
            raise DemoError(f"the hub's export is not the tour: counts {wrong}, unexpected {extra}")
        print(f"    the hub holds each of the tour's {len(tour)} ratings exactly once", flush=True)
        return ratings

    def desk(self) -> None:
        """The tour's 差评 in the bureau's 台账 (GET /api/v1/manage/bad-ratings), and the console's login."""
        self.say("The 差评 desk: the tour's bad rating in the 台账, with its working-day deadline")
        answer = requests.get(
            f"{self.hub.url}/api/v1/manage/bad-ratings",
            headers={"Authorization": f"Bearer {self.hub.console_token}"},
            timeout=10,
        )
        items = answer.json().get("items", []) if answer.ok else []
        tour = {case.case_no for case in TOUR_CASES}
        listed = [i for i in items if i["projectNo"] in tour]
        if not listed:
            raise DemoError(f"the tour's 差评 is not in the hub's 台账 (HTTP {answer.status_code})")
        for i in listed:
            print(
                f"    #{i['id']} {i['projectNo']} satisfaction {i['satisfaction']} section {i['dept']}"
                f" received {i['received']} deadline {i['deadline']} status {i['status']}",
                flush=True,
            )
        print(
            f"    console: {self.hub.url}/console/ (user {DEMO_SUPERVISOR}, one-time password"
            f" {self.hub.console_password}; a new password is asked at the first login)",
            flush=True,
        )

    def free_play(self) -> None:
        """With a display: a new case whenever the window is ready, so that visitors can rate by touch."""
        from PySide6.QtCore import QTimer

        numbers = iter(range(201, 10_000))

        def next_case() -> None:
            if self.on_page("ready"):
                number = next(numbers)
                self.sim.rate(f"370211202611280{number}", ticket=f"B{number:03d}", item_name="演示事项")

        timer = QTimer(self.window)
        timer.timeout.connect(next_case)
        timer.start(1000)
        print(
            "Your turn: touch a rating in the window; a new case follows each one. Ctrl-C stops.", flush=True
        )


def upstream_config(folder: Path, province_url: str, key: bytes) -> Path:
    """The demo hub's configuration: report upward to the stand-in province."""
    (folder / "upstream.key").write_text(key.hex() + "\n", encoding="ascii")
    config = folder / "hub.toml"
    config.write_text(
        f'[upstream]\nprofile = "{UPSTREAM_PROFILE}"\nurl = "{province_url}"\n'
        f'app = "{UPSTREAM_APP}"\nkey_file = "upstream.key"\n',
        encoding="utf-8",
    )
    return config


def report_upward(hub: Hub, province: Any) -> None:
    """Wait until the stand-in province holds each tour rating, print them as it holds them (its codes),
    and the hub's outbox; DemoError unless each is held exactly once."""
    print(f"==> The hub reports upward ({UPSTREAM_PROFILE} profile) to a stand-in province", flush=True)
    tour = {case.case_no for case in TOUR_CASES}
    wait_until(
        lambda: tour <= {key[0] for key in province.held}, UPSTREAM_TIMEOUT_S, "the province to hold the tour"
    )
    columns = ("projectNo", "serviceNumber", "taskCode", "satisfaction", "pf", "evalDetail", "assessTime")
    for row in [columns, *([str(r[c]) for c in columns] for r in province.held.values())]:
        print("    " + "  ".join(row), flush=True)
    summary = province.summary()
    outbox = requests.get(
        f"{hub.url}/api/v1/manage/upstream",
        headers={"Authorization": f"Bearer {hub.console_token}"},
        timeout=10,
    ).json()["counts"]
    print(f"    the hub's outbox: {', '.join(f'{s} {n}' for s, n in outbox.items() if n)}", flush=True)
    if summary["held"] != len(tour) or summary.get("conflicts") or summary.get("concurrent"):
        raise DemoError(f"the province does not hold the tour exactly once: {summary}")
    print(f"    the province holds each of the tour's {len(tour)} ratings exactly once", flush=True)


def run_demo(folder: Path, out: Path, *, offscreen: bool) -> int:
    from hub.upstream.standin import StandinProvince

    key = secrets.token_bytes(32)
    with StandinProvince(UPSTREAM_PROFILE, key=key, app=UPSTREAM_APP) as province:
        print(f"stand-in province ({UPSTREAM_PROFILE}) at {province.url}", flush=True)
        hub = Hub(folder, config=upstream_config(folder, province.url, key))
        return _run_demo(folder, out, hub, province, offscreen=offscreen)


def _run_demo(folder: Path, out: Path, hub: Hub, province: Any, *, offscreen: bool) -> int:
    with Simulator(folder / "devices") as sim:
        config = prepare(folder, hub, sim, thanks_s=1 if offscreen else 3)
        sync = Child("kiosk sync", ["sync", "--config", str(config)], folder / "sync.log")
        try:
            hub.start()
            print(f"hub {hub.url} (data {hub.data}, admin token {hub.admin_token})", flush=True)
            # The kiosk reads its roster cache at start: fill it from the hub first.
            run_kiosk("sync", "--once", "--config", str(config))
            sync.start()
            return _run_window(config, sim, hub, sync, out, offscreen=offscreen, province=province)
        finally:
            sync.stop()
            hub.stop()


def _run_window(
    config: Path, sim: Simulator, hub: Hub, sync: Child, out: Path, *, offscreen: bool, province: Any = None
) -> int:
    from PySide6.QtWidgets import QApplication

    from kiosk.app import create_window

    app = QApplication.instance() or QApplication([sys.argv[0]])
    window = create_window(config)
    try:
        window.resize(*WINDOW_SIZE)
        window.show()
        tour = Tour(app, window, sim, hub, sync, out, pace_s=0 if offscreen else TOUR_PACE_S)

        def interrupt(*_: Any) -> None:
            tour.interrupted = True
            app.exit(0)  # not quit(): that asks the window, which a kiosk refuses

        previous = {s: signal.signal(s, interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
        errors = ErrorRecorder()
        logging.getLogger().addHandler(errors)
        try:
            tour.play()
            tour.export()
            tour.desk()
            if province is not None:
                report_upward(hub, province)
            if errors.messages:
                raise DemoError(
                    f"the kiosk logged {len(errors.messages)} errors: " + "; ".join(errors.messages[:3])
                )
            if not offscreen:
                tour.free_play()
                app.exec()
        finally:
            logging.getLogger().removeHandler(errors)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 0
    finally:
        window.kiosk.close()  # type: ignore[attr-defined]  # set by kiosk.app.create_window
        window.allow_close()
        window.close()


def main(args) -> int:
    """``kiosk demo [--offscreen] [--out DIR]``."""
    offscreen = args.offscreen or not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if not offscreen and os.environ.get("DISPLAY"):
        # Qt aborts the whole process on a display it cannot reach, leaving the hub and agent behind.
        display = check_display(os.environ, "this session")
        if display.status == FAIL:
            print(f"kiosk demo: {display.detail}; playing the tour offscreen instead", flush=True)
            offscreen = True
    if offscreen:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    print(f"kiosk demo: {'offscreen tour' if offscreen else 'window'}; working in {folder}", flush=True)
    try:
        code = run_demo(folder, out, offscreen=offscreen)
    except DemoError as e:
        print(
            f"kiosk demo failed: {e}\n(the hub's and the agent's logs are kept in {folder})", file=sys.stderr
        )
        return 1
    except KeyboardInterrupt:
        print("kiosk demo: stopped", flush=True)
        code = 1
    shutil.rmtree(folder, ignore_errors=True)
    return code
