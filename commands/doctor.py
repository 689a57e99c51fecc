"""``kiosk doctor``: checks an installation from the outside and prints a table with a fix per failure.

Each check is a plain function returning ``CheckResult`` rows, so each can be tested alone; ``main``
runs them in order and exits 1 when any row failed. Nothing here changes the installation: an absent
event log is reported, not created. Run it as the service's user (``sudo -u kiosk kiosk doctor``) so that
permissions are judged as the kiosk sees them. No Qt import: the display check only inspects the
environment, the devices and the Qt plugin files.
"""

from __future__ import annotations

import errno
import grp
import importlib.util
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import requests
import serial

from core.config import Config, ConfigError, SerialConfig, load_config, read_device_secret
from core.contact import ContactError, load_public_key
from core.domain import CLOCK_SKEW_S
from core.store import EventLog, StoreError
from kiosk.fonts import find_cjk_font
from kiosk.roster import Roster
from kiosk.voice import check_device, prompt_dir
from sync.agent import CURSOR_KEY
from sync.client import HubClient, HubError, HubRefused

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
SERVICE_USER = "kiosk"
DISPLAY_ENV_FILE = "display.env"  # next to kiosk.toml; kiosk.service reads it (EnvironmentFile=)
FREE_DISK_FAIL_BYTES = 100 * 2**20
FREE_DISK_WARN_BYTES = 1 * 2**30
DEVICE_STATUS_STALE_S = 60  # the kiosk publishes every 10 s (kiosk.controller.DEVICE_STATUS_MS)
EARLIEST_PLAUSIBLE_YEAR = 2024
CLOCK_SLACK = timedelta(seconds=2)
SYNC_STALE = timedelta(hours=24)  # a backlog nobody has delivered for this long is a failure
# A running agent reports after every attempt while events wait (retrying at least once a minute): an
# event waiting this long with no report since it was written means the agent is not running.
AGENT_SILENT = timedelta(minutes=10)
HUB_TIMEOUT_S = 5.0
FIX_CLOCK = "enable time sync: timedatectl set-ntp true (and replace the RTC battery if it keeps losing time)"
HUB_CLOCK_WARN_S = 60  # the hub raises device_clock past this (docs/fleet.md)
TIME_SYNC_TIMEOUT_S = 5
FIX_REGISTRY = (
    "on the hub, check it runs on its usual --data folder or --db URL (a hub started from another folder "
    "has a new, empty registry: its log says NEW EMPTY DATABASE)"
)


@dataclass(frozen=True)
class CheckResult:
    check: str  # what was checked, e.g. "serial card"
    status: str  # OK, WARN, FAIL or SKIP
    detail: str  # what was found
    fix: str = ""  # for WARN and FAIL: what the technician should do


def ok(check: str, detail: str) -> CheckResult:
    return CheckResult(check, OK, detail)


def warn(check: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check, WARN, detail, fix)


def fail(check: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(check, FAIL, detail, fix)


def skip(check: str, detail: str) -> CheckResult:
    return CheckResult(check, SKIP, detail)


@dataclass(frozen=True)
class LogFacts:
    """What the log says besides its integrity: read once, judged by the checks that need it."""

    newest: dict[str, Any] | None = None  # the newest event
    sync: dict[str, Any] | None = None  # the status the sync agent publishes (None: never reported)
    devices: dict[str, Any] | None = None  # the serial devices' state the running kiosk publishes
    pending: int = 0  # events after the sync cursor, counted here: the agent's own figure may be stale
    oldest_pending_at: datetime | None = None  # when the first of them was written


# --- configuration and files ------------------------------------------------------------------------


def check_config(path: str | Path | None) -> tuple[CheckResult, Config | None]:
    try:
        config = load_config(path)
    except ConfigError as e:
        if e.key is None:  # the file itself: missing, unreadable, not TOML
            fix = "give --config PATH or $KIOSK_CONFIG; start from config/kiosk.example.toml"
        else:
            fix = "correct the named key (config/kiosk.example.toml explains each)"
        return fail("config", str(e), fix), None
    fitted = ", ".join(sorted(config.serial)) or "none"
    return ok("config", f"{config.path} (device {config.device.id}, serial: {fitted})"), config


def check_roster_file(config: Config) -> CheckResult:
    if config.roster_path is None:
        return skip("roster file", "no [roster] path: staff come from the hub's roster only")
    roster = Roster.load(config.roster_path)
    detail = f"{config.roster_path}: {len(roster)} staff"
    if roster.problems:
        more = f" (and {len(roster.problems) - 1} more)" if len(roster.problems) > 1 else ""
        fix = (
            "correct the rows named; header card,staff_no,name,title,photo (docs/hardware.md on card numbers)"
        )
        return warn("roster file", f"{detail}; {roster.problems[0]}{more}", fix)
    return ok("roster file", detail)


def check_font(config: Config) -> CheckResult:
    font = find_cjk_font(config)
    if font is None:
        return fail(
            "CJK font",
            "no font with Chinese glyphs found",
            "apt-get install fonts-noto-cjk (or set [ui] font_path)",
        )
    if config.ui.font_path is not None and Path(font) != config.ui.font_path:
        return warn(
            "CJK font",
            f"[ui] font_path {config.ui.font_path} not found; using {font}",
            "correct [ui] font_path or remove it",
        )
    return ok("CJK font", font)


# --- display ----------------------------------------------------------------------------------------


def display_environment(
    config: Config | None, environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, str], str]:
    """The variables the kiosk's display will see, and where they come from: this process's environment,
    overlaid by the ``display.env`` beside the config, as kiosk.service does."""
    env = dict(environ)
    source = "environment"
    env_file = config.path.parent / DISPLAY_ENV_FILE if config is not None else None
    if env_file is not None and env_file.is_file():
        env.update(read_env_file(env_file))
        source = str(env_file)
    return env, source


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (comments and blanks skipped)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";")) and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("\"'")
    return values


def qt_platform_plugin(name: str) -> Path | None:
    """The installed Qt platform plugin file for ``name`` (xcb, eglfs, …), found without importing Qt."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    plugin = Path(spec.submodule_search_locations[0]) / "Qt" / "plugins" / "platforms" / f"libq{name}.so"
    return plugin if plugin.is_file() else None


def check_display(env: Mapping[str, str], source: str, dev: Path = Path("/dev")) -> CheckResult:
    spec = env.get("QT_QPA_PLATFORM") or ("xcb" if env.get("DISPLAY") else "")
    if not spec:
        return fail(
            "display",
            "no QT_QPA_PLATFORM and no DISPLAY",
            "copy deploy/display/x11.env, eglfs.env or linuxfb.env to /etc/kiosk/display.env",
        )
    name, *params = spec.split(":")
    where = f"{spec} (from {source})"
    if name in ("offscreen", "minimal", "vnc"):
        return warn("display", f"{where}: draws on no screen", "fine for tests; a counter needs xcb or eglfs")
    if qt_platform_plugin(name) is None:
        return fail("display", f"{where}: Qt has no platform plugin {name!r}", "use xcb, eglfs or linuxfb")
    platform_problem = {"xcb": _x11_problem, "eglfs": _eglfs_problem, "linuxfb": _linuxfb_problem}.get(name)
    problem, fix = platform_problem(env, params, dev) if platform_problem else (None, "")
    if problem:
        return fail("display", f"{where}: {problem}", fix)
    return ok("display", where)


def _x11_problem(env: Mapping[str, str], _params: list[str], _dev: Path) -> tuple[str | None, str]:
    display = env.get("DISPLAY", "")
    host, _, number = display.rpartition(":")
    number = number.split(".")[0]
    if not number.isdigit():
        return f"DISPLAY={display!r} is not a display", "set DISPLAY=:0 in /etc/kiosk/display.env"
    if host not in ("", "unix", "localhost"):
        return None, ""  # a remote display: nothing to check from here
    if not _x_server_listening(f"/tmp/.X11-unix/X{number}"):
        return (
            f"no X server on {display}",
            "start the X session (autologin) before kiosk.service; or use eglfs",
        )
    xauthority = env.get("XAUTHORITY")
    if xauthority and not os.access(xauthority, os.R_OK):
        return (
            f"XAUTHORITY {xauthority} unreadable",
            "grant access with xhost +SI:localuser:kiosk (kiosk-x11-session)",
        )
    return None, ""


def _x_server_listening(path: str) -> bool:
    for address in (path, "\0" + path):  # the socket file, then Linux's abstract socket of that name
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(address)
            except OSError:
                continue
        return True
    return False


def _eglfs_problem(env: Mapping[str, str], _params: list[str], dev: Path) -> tuple[str | None, str]:
    cards = sorted((dev / "dri").glob("card*"))
    if not cards:
        return f"no DRM device {dev}/dri/card*", "load the board's GPU driver, or use linuxfb"
    if not any(_can_read_write(card) for card in cards):
        return f"{cards[0]} not accessible", "add the kiosk user to the video and render groups"
    return _rotation_problem(env.get("QT_QPA_EGLFS_ROTATION", "0"), env)


def _linuxfb_problem(env: Mapping[str, str], params: list[str], dev: Path) -> tuple[str | None, str]:
    options = dict(p.partition("=")[::2] for p in params)
    fb = Path(options.get("fb", str(dev / "fb0")))
    if not fb.exists():
        return f"no framebuffer {fb}", "enable the board's framebuffer driver, or name it with fb="
    if not _can_read_write(fb):
        return f"{fb} not accessible", "add the kiosk user to the video group"
    return _rotation_problem(options.get("rotation", "0"), env)


def _rotation_problem(screen: str, env: Mapping[str, str]) -> tuple[str | None, str]:
    """Touch input rotated otherwise than the screen: every touch lands in the wrong place."""
    for part in env.get("QT_QPA_EVDEV_TOUCHSCREEN_PARAMETERS", "").split(":"):
        key, _, touch = part.partition("=")
        if key == "rotate" and touch != screen:
            return f"screen rotated {screen} but touch {touch}", "make the touch parameters' rotate= match"
    return None, ""


# --- serial devices ---------------------------------------------------------------------------------


def _can_read_write(path: Path) -> bool:
    """Whether the service's user may open ``path`` read-write: as root, judged for that user."""
    return _service_user_may(path, write=True)


def _service_user_may(path: Path, *, write: bool) -> bool:
    """Whether the service's user may read (and ``write``) ``path``: as root, judged for that user."""
    if os.geteuid() != 0:
        return os.access(path, os.R_OK | (os.W_OK if write else 0))
    try:
        user = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        return True  # no service user on this machine (a development box): root can
    st = path.stat()
    groups = {user.pw_gid} | {g.gr_gid for g in grp.getgrall() if SERVICE_USER in g.gr_mem}
    if st.st_uid == user.pw_uid:
        mask = stat.S_IRUSR | (stat.S_IWUSR if write else 0)
    elif st.st_gid in groups:
        mask = stat.S_IRGRP | (stat.S_IWGRP if write else 0)
    else:
        mask = stat.S_IROTH | (stat.S_IWOTH if write else 0)
    return st.st_mode & mask == mask


def _running_kiosk_view(device: SerialConfig, published: dict[str, Any] | None) -> CheckResult:
    """A port the kiosk holds cannot be opened from here: judge it by what the kiosk published."""
    name = f"serial {device.name}"
    held = f"{device.port}: in use by the running kiosk"
    mine = [d for d in (published or {}).get("devices", []) if d.get("name") == device.name]
    age = time.time() - (published or {}).get("updated_at", 0)
    if not mine or age > DEVICE_STATUS_STALE_S:
        return ok(name, f"{held} (no recent status from it)")
    d = mine[0]
    counters = ", ".join(
        [_count(d["frames"], "frame"), f"{d['bad_frames']} bad", _count(d["reconnects"], "reconnect")]
    )
    if d["last_frame_at"]:
        counters += f", last frame {_ago(time.time() - d['last_frame_at'])} ago"
    if d["state"] != "connected":
        return fail(
            name, f"{held}: {d['state']} ({d['detail']}); {counters}", "check the device and its cable"
        )
    return ok(name, f"{held}: {counters}")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def check_serial(device: SerialConfig, published: dict[str, Any] | None = None) -> CheckResult:
    """``published``: the "devices" state the running kiosk writes beside the log, for a port it holds."""
    name = f"serial {device.name}"
    port = device.port
    if "://" not in port:  # a device path rather than a pyserial URL
        path = Path(port)
        if not path.exists():
            target = f" (a link to missing {os.readlink(path)})" if path.is_symlink() else ""
            return fail(
                name,
                f"{port} not found{target}",
                "plug the device in; check its udev rule (/etc/udev/rules.d/99-kiosk-serial.rules) or use "
                "/dev/serial/by-id/…",
            )
        if not _can_read_write(path):
            return fail(name, f"{port}: permission denied", "usermod -aG dialout kiosk (then restart)")
    try:
        ser = serial.serial_for_url(port, baudrate=device.baudrate, timeout=0, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as e:
        if getattr(e, "errno", None) in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY) or "lock" in str(e):
            return _running_kiosk_view(device, published)
        return fail(name, f"{port}: cannot open: {e}", "check the device and its cable; see the kernel log")
    ser.close()  # never read: a running kiosk must not lose a byte to the doctor
    return ok(name, f"{port}: opens at {device.baudrate} baud")


# --- the event log, disk and clock ------------------------------------------------------------------


def check_log(store_path: Path) -> tuple[list[CheckResult], LogFacts]:
    """Integrity and chain rows, and what else the log says (empty facts without a log)."""
    if not store_path.exists():
        row = warn("event log", f"{store_path} does not exist yet", "start the kiosk once (it creates it)")
        return [row], LogFacts()
    try:
        log = EventLog(store_path)
    except StoreError as e:
        return [
            fail("event log", str(e), "run the doctor as the kiosk user; the file must be kiosk's")
        ], LogFacts()
    with log:
        integrity = log.integrity_check()
        result = log.verify()
        head_seq = log.head_seq()
        cursor = log.get_state(CURSOR_KEY) or {}
        # The agent's cursor of another log (the file was replaced) means nothing for this one.
        acked = int(cursor.get("acked_seq") or 0) if cursor.get("log_id") == log.log_id else 0
        first_pending = log.get(acked + 1) if head_seq > acked else None
        facts = LogFacts(
            newest=log.get(head_seq),
            sync=log.get_state("sync"),
            devices=log.get_state("devices"),
            pending=max(0, head_seq - acked),
            oldest_pending_at=datetime.fromisoformat(first_pending["at"]) if first_pending else None,
        )
    fix = "keep the file for analysis; restore the last backup (docs/deployment.md, Backup)"
    rows = [
        ok("log integrity", "sqlite integrity_check ok")
        if integrity == "ok"
        else fail("log integrity", f"sqlite: {integrity}", fix),
        ok("log chain", f"{result.count} events, chain intact")
        if result.ok
        else fail("log chain", f"seq {result.first_bad_seq}: {result.problem}", fix),
    ]
    return rows, facts


def check_screen_size(config: Config) -> CheckResult:
    """Touch targets and text are sized in millimetres from the screen's pixels per inch."""
    diagonal = config.ui.screen_diagonal_in
    if diagonal is None:
        return warn(
            "screen size",
            "no [ui] screen_diagonal_in: sizes follow the DPI the screen reports, often wrong on panels",
            "set [ui] screen_diagonal_in (e.g. 10.1) so touch targets are 9.5 mm",
        )
    return ok("screen size", f'{diagonal}" diagonal: touch targets and text sized from it')


def check_voice(config: Config) -> CheckResult:
    """Spoken prompts: a warning, never a failure, when nothing can be heard (the captions stay)."""
    voice = config.voice
    if voice.mute or voice.volume == 0:
        return skip("voice", "muted in [voice]: the pages' captions only")
    problem = check_device(voice)
    if problem:
        return warn(
            "voice", f"prompts cannot be heard: {problem}", "fix the sound device or set [voice] device"
        )
    return ok("voice", f"plays on {voice.device}; prompts in {prompt_dir(voice)}")


def check_disk(path: Path) -> CheckResult:
    existing = next(p for p in (path, *path.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    detail = f"{free / 2**30:.1f} GiB free at {existing}"
    if free < FREE_DISK_FAIL_BYTES:
        return fail("free disk", detail, "free space: journalctl --vacuum-size=100M, remove old files")
    if free < FREE_DISK_WARN_BYTES:
        return warn("free disk", detail, "free space before the log fills the disk")
    return ok("free disk", detail)


def check_clock(now: datetime, newest_event: dict[str, Any] | None) -> CheckResult:
    if now.year < EARLIEST_PLAUSIBLE_YEAR:
        return fail("clock", f"{now:%Y-%m-%d %H:%M} is not plausible", FIX_CLOCK)
    if newest_event is not None:
        last = datetime.fromisoformat(newest_event["at"])
        if now + CLOCK_SLACK < last:
            return fail(
                "clock", f"behind the log's newest event (seq {newest_event['seq']} at {last})", FIX_CLOCK
            )
    return ok("clock", now.isoformat(timespec="seconds"))


# --- hub and sync -----------------------------------------------------------------------------------


def check_device_key(config: Config) -> CheckResult:
    """The hub secret: present, filled in, readable by the kiosk user and by nobody else."""
    assert config.hub is not None  # checked only with a [hub] section
    path, device_id = config.hub.secret_file, config.device.id
    fix_mode = f"chgrp kiosk {path}; chmod 0640 {path}"
    try:
        st = path.stat()
    except FileNotFoundError:
        return fail(
            "device key",
            f"{path} does not exist",
            f"put the hex secret printed by `kiosk hub device add {device_id}` in it; {fix_mode}",
        )
    mode = f"mode {stat.S_IMODE(st.st_mode):04o}"
    if os.access(path, os.R_OK):
        text = path.read_bytes().strip()
        fix_secret = f"put the hex secret printed by `kiosk hub device add {device_id}` in it"
        if not text:
            return fail("device key", f"{path} is empty (the placeholder install.sh leaves)", fix_secret)
        try:
            bytes.fromhex(text.decode("ascii"))
        except ValueError:
            return fail("device key", f"{path} is not a hex secret", fix_secret)
    if st.st_mode & stat.S_IROTH:
        return warn("device key", f"{path} is readable by every user ({mode})", fix_mode)
    if not _service_user_may(path, write=False):
        return warn("device key", f"the {SERVICE_USER} user cannot read {path} ({mode})", fix_mode)
    return ok("device key", f"{path} ({mode}: {SERVICE_USER} can read it, other users cannot)")


def check_hub_public_key(config: Config) -> CheckResult:
    """The hub's public key that phone numbers are sealed to: without a usable one, no phone field."""
    assert config.hub is not None  # checked only with a [hub] section
    path = config.hub.public_key_file
    if path is None:
        return skip("hub public key", "no [hub] public_key_file: the reasons page offers no phone number")
    try:
        load_public_key(path)
    except OSError as e:
        return fail(
            "hub public key", f"{path}: {e.strerror}", "copy the output of `kiosk hub key export` there"
        )
    except ContactError as e:
        return fail("hub public key", str(e), "copy the output of `kiosk hub key export` there")
    return ok("hub public key", f"{path}: phone numbers are sealed to it")


def check_hub(config: Config, now: datetime) -> list[CheckResult]:
    """Reachability (GET /healthz) and whether the hub accepts this device's signature (its roster)."""
    hub, device_id = config.hub, config.device.id
    assert hub is not None  # checked only with a [hub] section
    try:
        response = requests.get(f"{hub.url}/healthz", timeout=HUB_TIMEOUT_S)
        healthy = response.status_code == 200 and response.json().get("ok") is True
        detail = f"{hub.url}: HTTP {response.status_code}"
    except (requests.RequestException, ValueError) as e:
        healthy, detail = False, f"{hub.url}: {type(e).__name__}"
    if not healthy:
        fix = "check the network and [hub] url; on the hub: systemctl status kiosk-hub"
        return [fail("hub reachable", detail, fix), skip("hub signature", "hub unreachable")]
    rows = [ok("hub reachable", f"{hub.url}/healthz")]
    try:
        secret = read_device_secret(config.path, hub.secret_file)
    except ConfigError as e:
        fix = f"put the hex secret printed by `kiosk hub device add {device_id}` in {hub.secret_file}"
        return [*rows, fail("hub signature", str(e), fix)]
    try:
        _signed_roster_request(config, secret)
    except HubRefused as e:
        skew = _clock_skew_s(response, now)
        if e.status == 401 and skew is not None and abs(skew) > CLOCK_SKEW_S:
            return [
                *rows,
                fail("hub signature", f"refused: this clock is {skew:+.0f} s off the hub's", FIX_CLOCK),
            ]
        fix = (
            f"register the device (kiosk hub device add {device_id}) and copy its secret to "
            f"{hub.secret_file}; {FIX_REGISTRY}"
        )
        return [*rows, fail("hub signature", f"device {device_id} refused: {e}", fix)]
    except HubError as e:
        return [*rows, fail("hub signature", str(e), "see the hub's log")]
    return [
        *rows,
        ok("hub signature", f"device {device_id} accepted (signed roster request)"),
        check_hub_clock(_clock_skew_s(response, now)),
    ]


def check_hub_clock(skew_s: float | None) -> CheckResult:
    """This clock against the hub's (its Date header): the hub alarms past 60 s, refuses past 300 s."""
    if skew_s is None:
        return skip("clock vs hub", "the hub's answer has no Date header")
    detail = f"{skew_s:+.0f} s against the hub's clock (±1 s)"
    if abs(skew_s) > CLOCK_SKEW_S:
        return fail("clock vs hub", detail + ": the hub refuses this device", FIX_CLOCK)
    if abs(skew_s) > HUB_CLOCK_WARN_S:
        return warn("clock vs hub", detail + ": the hub raises device_clock", FIX_CLOCK)
    return ok("clock vs hub", detail)


def check_time_sync(run=subprocess.run) -> CheckResult:
    """Whether the clock is kept by NTP: ``timedatectl`` (systemd-timesyncd or chrony), else ``chronyc``."""

    def output(*cmd: str) -> str | None:
        try:
            done = run(list(cmd), capture_output=True, text=True, timeout=TIME_SYNC_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    synced = output("timedatectl", "show", "-p", "NTPSynchronized", "--value")
    if synced is not None and synced.strip() in ("yes", "no"):
        if synced.strip() == "yes":
            return ok("time sync", "timedatectl: NTP synchronized")
        return warn("time sync", "timedatectl: not NTP synchronized", FIX_CLOCK)
    tracking = output("chronyc", "tracking")
    if tracking is not None:
        leap = next(
            (line.split(":", 1)[1].strip() for line in tracking.splitlines() if line.startswith("Leap")), ""
        )
        if leap == "Normal":
            return ok("time sync", "chronyc: synchronised (leap status Normal)")
        return warn(
            "time sync", f"chronyc: leap status {leap or 'unknown'}", "chronyc sources -v; check NTP servers"
        )
    return warn(
        "time sync",
        "neither timedatectl nor chronyc could tell whether the clock is synchronised",
        FIX_CLOCK,
    )


def _signed_roster_request(config: Config, secret: bytes) -> None:
    """GET this device's roster, signed: the hub answers only a device it knows with the right secret."""
    assert config.hub is not None  # checked only with a [hub] section
    client = HubClient(config.hub.url, config.device.id, secret, timeout_s=(HUB_TIMEOUT_S, HUB_TIMEOUT_S))
    client.get_roster(None)


def _clock_skew_s(response: requests.Response, now: datetime) -> float | None:
    """This machine's clock minus the hub's, from the Date header of one of its answers."""
    try:
        return (now - parsedate_to_datetime(response.headers["Date"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None


def check_sync(facts: LogFacts, now: datetime) -> CheckResult:
    """Judged by the backlog counted from the log and by how long ago the agent last reported."""
    state, pending = facts.sync, facts.pending
    waited = now - facts.oldest_pending_at if pending and facts.oldest_pending_at else timedelta(0)
    if state is None:
        detail = f"{pending} pending; the sync agent has never reported"
        if waited > SYNC_STALE:
            return fail("sync", detail, "systemctl status kiosk-sync; journalctl -u kiosk-sync")
        return warn("sync", detail, "systemctl status kiosk-sync")
    detail = (
        f"{state.get('state')}: {pending} pending, last success {state.get('last_success_at') or 'never'}"
    )
    if state.get("alarm"):
        return fail(
            "sync", f"alarm: {state['alarm']}", "docs/hub.md, When a kiosk raises the alarm; the hub's log"
        )
    if state.get("state") == "error":
        return fail("sync", f"{detail}; {state.get('last_error')}", "journalctl -u kiosk-sync")
    last = state.get("last_success_at")
    stale = last is None or now - datetime.fromisoformat(last) > SYNC_STALE
    if pending and stale and waited > SYNC_STALE:
        return fail(
            "sync", detail, "get the hub reachable; systemctl status kiosk-sync; journalctl -u kiosk-sync"
        )
    reported = datetime.fromisoformat(state["updated_at"]) if state.get("updated_at") else None
    oldest = facts.oldest_pending_at
    if waited > AGENT_SILENT and (reported is None or (oldest is not None and reported < oldest)):
        silent = (
            f"not reported for {_ago((now - reported).total_seconds())}" if reported else "never reported"
        )
        return warn(
            "sync",
            f"{detail}; the agent has {silent} while events wait",
            "is the agent running? systemctl status kiosk-sync; journalctl -u kiosk-sync",
        )
    if state.get("state") == "offline":
        return warn("sync", detail, "the hub is unreachable; ratings wait in the log")
    if state.get("roster_error"):
        return warn(
            "sync",
            f"{detail}; {state['roster_error']}",
            "check the roster imported on the hub (kiosk hub roster import); the cached roster stays in use",
        )
    return ok("sync", detail)


# --- the command --------------------------------------------------------------------------------------


def run_checks(config_path: str | Path | None, environ: Mapping[str, str] = os.environ) -> list[CheckResult]:
    config_row, config = check_config(config_path)
    env, source = display_environment(config, environ)
    rows = [config_row]
    if config is None:
        rows.append(check_display(env, source))
        return rows
    rows += [check_roster_file(config), check_font(config), check_display(env, source)]
    rows += [check_screen_size(config), check_voice(config)]
    log_rows, facts = check_log(config.store_path)
    rows += [check_serial(device, facts.devices) for device in config.serial.values()]
    now = datetime.now().astimezone()
    rows += [
        *log_rows,
        check_disk(config.store_path.parent),
        check_clock(now, facts.newest),
        check_time_sync(),
    ]
    if config.hub is None:
        rows.append(skip("hub", "no [hub] section: ratings stay on this terminal"))
    else:
        rows += [check_device_key(config), check_hub_public_key(config)]
        rows += [*check_hub(config, now), check_sync(facts, now)]
    return rows


def format_table(rows: list[CheckResult]) -> str:
    width = max(len(r.check) for r in rows)
    lines = []
    for r in rows:
        lines.append(f"{r.check:<{width}}  {r.status:<4}  {r.detail}")
        if r.fix and r.status in (WARN, FAIL):
            lines.append(f"{'':<{width}}        fix: {r.fix}")
    failed = sum(r.status == FAIL for r in rows)
    lines.append(f"{failed} failed, {sum(r.status == WARN for r in rows)} warnings, {len(rows)} checks")
    return "\n".join(lines)


def main(args) -> int:
    rows = run_checks(args.config)
    print(format_table(rows))
    sys.stdout.flush()
    if rows[0].status == FAIL:  # the configuration itself: exit 2 like every command (docs/configuration.md)
        return 2
    return 1 if any(r.status == FAIL for r in rows) else 0
