"""The kiosk configuration: one TOML file (docs/configuration.md) loaded into typed, immutable objects.

Every problem is a ConfigError naming the file, the key and what was expected; the command line turns
it into one message and exit status 2. Relative paths are resolved against the file's folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .domain import DEFAULT_REASONS, REASON_CODE_PATTERN, Reason
from .tomlconfig import ConfigError, Section, http_url, int_range, one_of, pattern, read_toml

DEFAULT_PATHS = (Path("/etc/kiosk/kiosk.toml"), Path("config/kiosk.toml"))
DEVICE_ID_PATTERN = r"[A-Za-z0-9._-]{1,64}"


@dataclass(frozen=True)
class DeviceConfig:
    id: str
    window: str
    hall: str = ""
    area_code: str = ""
    dept_code: str = ""


@dataclass(frozen=True)
class SerialConfig:
    """One serial device; ``port`` is a device path or any pyserial URL (``loop://``, ``socket://``…)."""

    name: str
    port: str
    baudrate: int = 9600
    protocol: str = "em4100"  # card reader only: "em4100" or "line"
    encoding: str = "utf-8"  # ticket feed only: "utf-8" or "gb18030"


@dataclass(frozen=True)
class HubConfig:
    url: str
    secret_file: Path
    public_key_file: Path | None = None
    heartbeat_s: int = 60  # how often the agent reports the device's health (docs/fleet.md)


@dataclass(frozen=True)
class QrConfig:
    base_url: str
    ttl_s: int = 600


@dataclass(frozen=True)
class UiConfig:
    fullscreen: bool = True
    rating_timeout_s: int = 60
    thanks_s: int = 3
    reasons_timeout_s: int = 60
    walkin: bool = False
    walkin_interval_s: int = 30
    hide_cursor: bool = True
    font_path: Path | None = None
    admin_pin_hash: str | None = None
    reasons_idle_s: int = 10  # a rate request closes a reasons page untouched this long (nobody refused)
    touch_screen: bool = True  # without one the reasons page only offers the QR code
    screen_diagonal_in: float | None = None  # sizes in millimetres from it; None: the screen's DPI
    elderly: bool = False  # 长辈模式 at start (the citizen's toggle changes it while the kiosk runs)
    elderly_time_factor: float = 1.5  # 长辈模式 gives this many times the rating and reasons time


@dataclass(frozen=True)
class VoiceConfig:
    """Spoken prompts (docs/ui.md); the files are WAVs in ``dir``, replaceable per bureau."""

    mute: bool = False
    volume: int = 80  # percent of the recorded level
    quiet_hours: tuple[int, int] | None = None  # (start, end) minutes after midnight: silent then
    welcome: bool = False  # also greet on sign-in
    dir: Path | None = None  # None: the prompts shipped in kiosk/assets/voice/
    device: str = "default"  # the ALSA device aplay plays to


@dataclass(frozen=True)
class Config:
    path: Path
    device: DeviceConfig
    store_path: Path
    roster_path: Path | None
    serial: dict[str, SerialConfig]
    hub: HubConfig | None
    qr: QrConfig | None
    ui: UiConfig
    reasons: tuple[Reason, ...] = field(default=DEFAULT_REASONS)
    voice: VoiceConfig = field(default_factory=VoiceConfig)
    # The keys written in the file ("ui.thanks_s", "reasons"): they win over the hub's remote settings.
    explicit_keys: frozenset[str] = frozenset()

    def serial_device(self, name: str) -> SerialConfig | None:
        """The fitted device called ``name`` (card, ticket, keypad), or None when it is not fitted."""
        return self.serial.get(name)


def read_device_secret(config_path: Path, secret_file: Path) -> bytes:
    """The device secret (the hex text `kiosk hub device add` printed) as key bytes, for the hub's request
    signatures and the QR tokens alike; ConfigError naming the file otherwise."""
    try:
        text = secret_file.read_text(encoding="ascii")
        secret = bytes.fromhex(text.strip())
    except OSError as e:
        raise ConfigError(config_path, "[hub] secret_file", f"{secret_file}: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise ConfigError(config_path, "[hub] secret_file", f"{secret_file}: expected hex text") from None
    if not secret:
        raise ConfigError(config_path, "[hub] secret_file", f"{secret_file}: is empty")
    return secret


def file_stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is rewritten (mtime, size, inode); None when there is no file."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


def default_config_path() -> Path:
    """``$KIOSK_CONFIG``, then /etc/kiosk/kiosk.toml, then ./config/kiosk.toml (docs/configuration.md)."""
    env = os.environ.get("KIOSK_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return candidate
    return DEFAULT_PATHS[0]


def load_config(path: Path | str | None = None) -> Config:
    # Absolute in every message: a technician reading a log cannot know which folder it was relative to.
    path = Path(path if path is not None else default_config_path()).absolute()
    return parse_config(read_toml(path), path)


_TOP_LEVEL_NAMES = {
    **{name: f"[{name}]" for name in ("device", "store", "roster", "serial", "hub", "qr", "ui", "voice")},
    "reasons": "[[reasons]]",
}
_SERIAL_KEYS = {"card": ("protocol",), "ticket": ("encoding",), "keypad": ()}
_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _span(lo: float, hi: float) -> Callable[[float], str | None]:
    return lambda v: None if lo <= v <= hi else f"expected {lo} to {hi}, got {v}"


def _optional_float(v: float | None) -> float | None:
    return None if v is None else float(v)


def _quiet_hours(v: str) -> str | None:
    return None if v == "" or parse_quiet_hours(v) is not None else f"expected HH:MM-HH:MM, got {v!r}"


def parse_quiet_hours(v: str) -> tuple[int, int] | None:
    """ "22:00-07:00" as minutes after midnight, (1320, 420); None for anything else."""
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)", v)
    if m is None:
        return None
    h1, m1, h2, m2 = map(int, m.groups())
    return h1 * 60 + m1, h2 * 60 + m2


class _TopLevel(Section):
    """The file itself: its keys are tables, named as written (``[device]``, ``[[reasons]]``)."""

    def key(self, key: str) -> str:
        return _TOP_LEVEL_NAMES.get(key, key)


def parse_config(data: dict[str, Any], path: Path) -> Config:
    path = Path(path).absolute()
    top = _TopLevel(path, "", data)

    device_s = Section(path, "device", top.get("device", dict))
    device = DeviceConfig(
        id=device_s.get("id", str, check=pattern(DEVICE_ID_PATTERN, "1-64 characters of A-Z a-z 0-9 . _ -")),
        window=device_s.get("window", str, check=pattern(r"\S{1,16}", "a window number of 1-16 characters")),
        hall=device_s.get("hall", str, DeviceConfig.hall),
        area_code=device_s.get(
            "area_code", str, DeviceConfig.area_code, check=pattern(r"(\d{6,9})?", "6-9 digits (行政区划)")
        ),
        dept_code=device_s.get(
            "dept_code",
            str,
            DeviceConfig.dept_code,
            check=pattern(r"([0-9A-Z]{18})?", "18 characters (统一社会信用代码)"),
        ),
    )
    device_s.done()

    store_s = Section(path, "store", top.get("store", dict, {}))
    store_path = store_s.path_value("path", "kiosk.db")
    store_s.done()

    roster_s = Section(path, "roster", top.get("roster", dict, {}))
    roster_path = roster_s.path_value("path", None)
    roster_s.done()

    serial: dict[str, SerialConfig] = {}
    serial_top = Section(path, "serial", top.get("serial", dict, {}))
    for name in list(serial_top.data):
        if name not in _SERIAL_KEYS:
            raise ConfigError(path, f"[serial.{name}]", "unknown device; expected card, ticket or keypad")
        s = Section(path, f"serial.{name}", serial_top.get(name, dict))
        kwargs: dict[str, Any] = {
            "port": s.get(
                "port", str, check=lambda v: None if v.strip() else "expected a device path or URL"
            ),
            "baudrate": s.get("baudrate", int, SerialConfig.baudrate, check=int_range(1200, 115200)),
        }
        if kwargs["baudrate"] not in _BAUDRATES:
            raise ConfigError(path, s.key("baudrate"), f"expected one of {_BAUDRATES}")
        if "protocol" in _SERIAL_KEYS[name]:
            kwargs["protocol"] = s.get("protocol", str, SerialConfig.protocol, check=one_of("em4100", "line"))
        if "encoding" in _SERIAL_KEYS[name]:
            kwargs["encoding"] = s.get(
                "encoding", str, SerialConfig.encoding, check=one_of("utf-8", "gb18030")
            )
        s.done()
        serial[name] = SerialConfig(name=name, **kwargs)
    serial_top.done()

    hub = None
    if "hub" in data:
        hub_s = Section(path, "hub", top.get("hub", dict))
        hub = HubConfig(
            url=hub_s.get("url", str, check=http_url).rstrip("/"),
            secret_file=hub_s.path_value("secret_file", "device.key"),
            public_key_file=hub_s.path_value("public_key_file", None),
            heartbeat_s=hub_s.get("heartbeat_s", int, 60, check=int_range(5, 86400)),
        )
        hub_s.done()
    else:
        top.seen.add("hub")

    qr_s = Section(path, "qr", top.get("qr", dict, {}))
    default_base = f"{hub.url}/q/" if hub else None
    base_url = qr_s.get("base_url", str, default_base, check=http_url)
    ttl_s = qr_s.get("ttl_s", int, QrConfig.ttl_s, check=int_range(30, 86400))
    qr_s.done()
    qr = QrConfig(base_url=base_url, ttl_s=ttl_s) if base_url else None

    ui_s = Section(path, "ui", top.get("ui", dict, {}))
    ui = UiConfig(
        fullscreen=ui_s.get("fullscreen", bool, UiConfig.fullscreen),
        rating_timeout_s=ui_s.get(
            "rating_timeout_s", int, UiConfig.rating_timeout_s, check=int_range(5, 3600)
        ),
        thanks_s=ui_s.get("thanks_s", int, UiConfig.thanks_s, check=int_range(1, 60)),
        reasons_timeout_s=ui_s.get(
            "reasons_timeout_s", int, UiConfig.reasons_timeout_s, check=int_range(10, 3600)
        ),
        walkin=ui_s.get("walkin", bool, UiConfig.walkin),
        walkin_interval_s=ui_s.get(
            "walkin_interval_s", int, UiConfig.walkin_interval_s, check=int_range(0, 3600)
        ),
        hide_cursor=ui_s.get("hide_cursor", bool, UiConfig.hide_cursor),
        font_path=ui_s.path_value("font_path", None),
        admin_pin_hash=ui_s.get(
            "admin_pin_hash",
            str,
            None,
            check=pattern(r"pbkdf2_sha256\$\d+\$[0-9a-f]+\$[0-9a-f]{64}", "a hash made by `kiosk admin-pin`"),
        ),
        reasons_idle_s=ui_s.get("reasons_idle_s", int, 10, check=int_range(3, 600)),
        touch_screen=ui_s.get("touch_screen", bool, True),
        screen_diagonal_in=_optional_float(
            ui_s.get("screen_diagonal_in", (int, float), None, check=_span(3, 100))
        ),
        elderly=ui_s.get("elderly", bool, False),
        elderly_time_factor=float(ui_s.get("elderly_time_factor", (int, float), 1.5, check=_span(1, 4))),
    )
    ui_s.done()

    voice_s = Section(path, "voice", top.get("voice", dict, {}))
    voice = VoiceConfig(
        mute=voice_s.get("mute", bool, False),
        volume=voice_s.get("volume", int, 80, check=int_range(0, 100)),
        quiet_hours=parse_quiet_hours(voice_s.get("quiet_hours", str, "", check=_quiet_hours)),
        welcome=voice_s.get("welcome", bool, False),
        dir=voice_s.path_value("dir", None),
        device=voice_s.get(
            "device", str, "default", check=lambda v: None if v.strip() else "expected a device"
        ),
    )
    voice_s.done()

    reasons = DEFAULT_REASONS
    if "reasons" in data:
        items = top.get("reasons", list)
        if not items:
            raise ConfigError(path, "[[reasons]]", "expected at least one reason")
        parsed = []
        for i, item in enumerate(items):
            r = Section(path, f"reasons.{i}", item)
            parsed.append(
                Reason(
                    code=r.get(
                        "code", str, check=pattern(REASON_CODE_PATTERN, "1-16 characters of A-Z a-z 0-9 _")
                    ),
                    label=r.get("label", str, check=lambda v: None if v.strip() else "expected a label"),
                    group=r.get("group", str, "其他"),
                )
            )
            r.done()
        codes = [r.code for r in parsed]
        if len(set(codes)) != len(codes):
            raise ConfigError(path, "[[reasons]] code", "codes must be unique")
        reasons = tuple(parsed)

    top.done()
    return Config(
        path=path,
        device=device,
        store_path=store_path,
        roster_path=roster_path,
        serial=serial,
        hub=hub,
        qr=qr,
        ui=ui,
        reasons=reasons,
        voice=voice,
        explicit_keys=frozenset(
            [f"{name}.{key}" for name, table in data.items() if isinstance(table, dict) for key in table]
            + (["reasons"] if "reasons" in data else [])
        ),
    )
