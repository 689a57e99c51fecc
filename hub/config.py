"""The hub's configuration file (TOML; docs/hub.md "Configuration file"): server, database, the 差评
deadline rule, the upward target and the alert channels, loaded into typed, immutable objects.

``kiosk hub --config PATH`` (default ``$KIOSK_HUB_CONFIG``, then /etc/kiosk/hub.toml when it exists);
the command-line flags override the file. Same error rules as the terminal's file: one ConfigError naming
the file and the key, exit 2. Without a file every value has its default and nothing is reported upward
and no alert is sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from core.tomlconfig import ConfigError, Section, http_url, int_range, one_of, read_toml

from .upstream.signing import ALGORITHMS as SIGNATURES

DEFAULT_PATH = Path("/etc/kiosk/hub.toml")
CONFIG_ENV = "KIOSK_HUB_CONFIG"
DEFAULT_PORT = 8700
UPSTREAM_PROFILES = ("json-v1", "zhejiang-offlinereport", "shandong")
ALERT_KINDS = ("webhook", "wecom", "dingtalk")
ALERT_EVENTS = ("bad_rating", "due_soon", "overdue", "device_offline")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    public_url: str | None = None  # what phones and devices reach, behind the proxy
    hall: str = ""  # the service hall's name: the phone rating page says who is asking


@dataclass(frozen=True)
class DeadlineConfig:
    working_days: int = 5  # 差评 response rule: answered within 5 working days
    calendar_file: Path | None = None  # holidays and 调休 workdays for years the built-in calendar lacks


@dataclass(frozen=True)
class UpstreamConfig:
    profile: str
    url: str
    app: str
    key_file: Path
    signature: str | None = None  # hmac-sha256 | sm2-sm3; None: the profile's own
    timeout_s: float = 10.0  # one request to the province, at most


@dataclass(frozen=True)
class AlertChannel:
    kind: str
    url: str
    events: tuple[str, ...]
    secret_file: Path | None = None  # 钉钉's signing secret (加签), when the robot has one


@dataclass(frozen=True)
class FiguresConfig:
    """[figures]: rankings, the quarterly 回访 sample, the public 通报 and the window posters."""

    bottom_n: int = 3  # the bottom N of each period's ranking are marked
    periods_running: int = 2  # flagged when in the bottom N this many periods running (第十五条)
    ranking_period: str = "month"  # month | quarter
    min_rated: int = 10  # fewer counted ratings in a period: not ranked
    sample_share: float = 0.05  # the quarterly 回访 sample: this share of the quarter's cases …
    sample_min: int = 10  # … but at least this many …
    sample_max: int = 200  # … and at most this many
    public_staff: bool = False  # the public 通报 names staff (name and number)
    poster_url: str | None = None  # where the window posters' QR code leads; {window}, {device} replaced
    hall_name: str = "政务服务大厅"  # printed on posters, reports and the big screen


@dataclass(frozen=True)
class HubConfig:
    path: Path | None = None  # None: built-in defaults, no file
    server: ServerConfig = field(default_factory=ServerConfig)
    database_url: str | None = None
    deadline: DeadlineConfig = field(default_factory=DeadlineConfig)
    upstream: UpstreamConfig | None = None
    alerts: tuple[AlertChannel, ...] = ()
    figures: FiguresConfig = field(default_factory=FiguresConfig)


def config_path(given: str | Path | None) -> Path | None:
    """``--config`` as given, else ``$KIOSK_HUB_CONFIG``, else /etc/kiosk/hub.toml if it exists."""
    if given:
        return Path(given)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return DEFAULT_PATH if DEFAULT_PATH.exists() else None


def load_hub_config(given: str | Path | None = None) -> HubConfig:
    path = config_path(given)
    if path is None:
        return HubConfig()
    return parse_hub_config(read_toml(path), path)


class _TopLevel(Section):
    """The file itself: its keys are tables, named as written (``[server]``, ``[[alerts]]``)."""

    def key(self, key: str) -> str:
        return f"[[{key}]]" if key == "alerts" else f"[{key}]"


def parse_hub_config(data: dict, path: Path) -> HubConfig:
    path = Path(path).absolute()
    top = _TopLevel(path, "", data)

    s = Section(path, "server", top.get("server", dict, {}))
    server = ServerConfig(
        host=s.get("host", str, "127.0.0.1", check=lambda v: None if v.strip() else "expected an address"),
        port=s.get("port", int, DEFAULT_PORT, check=int_range(1, 65535)),
        public_url=s.get("public_url", str, None, check=http_url),
        hall=s.get("hall", str, ""),
    )
    s.done()

    d = Section(path, "database", top.get("database", dict, {}))
    database_url = d.get("url", str, None, check=lambda v: None if "://" in v else "expected a database URL")
    d.done()

    dl = Section(path, "deadline", top.get("deadline", dict, {}))
    deadline = DeadlineConfig(
        working_days=dl.get("working_days", int, 5, check=int_range(1, 60)),
        calendar_file=_optional_path(dl, "calendar_file"),
    )
    dl.done()

    upstream = None
    if "upstream" in data:
        u = Section(path, "upstream", top.get("upstream", dict))
        upstream = UpstreamConfig(
            profile=u.get("profile", str, check=one_of(*UPSTREAM_PROFILES)),
            url=u.get("url", str, check=http_url),
            app=u.get("app", str, check=lambda v: None if v.strip() else "expected the app id (appMark)"),
            key_file=u.path_value("key_file"),
            signature=u.get("signature", str, None, check=one_of(*SIGNATURES)),
            timeout_s=float(
                u.get(
                    "timeout_s",
                    (int, float),
                    10.0,
                    check=lambda v: None if 1 <= v <= 120 else "expected 1 to 120",
                )
            ),
        )
        u.done()
        upstream_target(upstream, path)  # the key file read and checked now: exit 2 at start, not later
    else:
        top.seen.add("upstream")

    alerts = []
    for i, item in enumerate(top.get("alerts", list, [])):
        a = Section(path, f"alerts.{i}", item)
        events = a.get("events", list, list(ALERT_EVENTS))
        unknown = [e for e in events if e not in ALERT_EVENTS]
        if unknown or not events:
            raise ConfigError(path, a.key("events"), f"expected some of {', '.join(ALERT_EVENTS)}")
        alerts.append(
            AlertChannel(
                kind=a.get("kind", str, check=one_of(*ALERT_KINDS)),
                url=a.get("url", str, check=http_url),
                events=tuple(events),
                secret_file=_optional_path(a, "secret_file"),
            )
        )
        a.done()

    figures = _figures(path, top.get("figures", dict, {}))

    top.done()
    return HubConfig(
        path=path,
        server=server,
        database_url=database_url,
        deadline=deadline,
        upstream=upstream,
        alerts=tuple(alerts),
        figures=figures,
    )


def _figures(path: Path, data: dict) -> FiguresConfig:
    f = Section(path, "figures", data)
    d = FiguresConfig()
    share = f.get(
        "sample_share",
        (float, int),
        d.sample_share,
        check=lambda v: None if 0 < v <= 1 else "expected a share in (0, 1]",
    )
    figures = FiguresConfig(
        bottom_n=f.get("bottom_n", int, d.bottom_n, check=int_range(1, 100)),
        periods_running=f.get("periods_running", int, d.periods_running, check=int_range(1, 24)),
        ranking_period=f.get("ranking_period", str, d.ranking_period, check=one_of("month", "quarter")),
        min_rated=f.get("min_rated", int, d.min_rated, check=int_range(0, 100_000)),
        sample_share=float(share),
        sample_min=f.get("sample_min", int, d.sample_min, check=int_range(0, 100_000)),
        sample_max=f.get("sample_max", int, d.sample_max, check=int_range(1, 100_000)),
        public_staff=f.get("public_staff", bool, d.public_staff),
        poster_url=f.get("poster_url", str, None, check=lambda v: None if not v else http_url(v)) or None,
        hall_name=f.get(
            "hall_name", str, d.hall_name, check=lambda v: None if v.strip() else "expected a name"
        ),
    )
    if figures.sample_min > figures.sample_max:
        raise ConfigError(path, f.key("sample_min"), "must not be above sample_max")
    f.done()
    return figures


def _optional_path(section: Section, key: str) -> Path | None:
    """A path key where "" (the documented default) means none."""
    if section.data.get(key) == "":
        section.seen.add(key)
        return None
    return section.path_value(key, None)


def upstream_target(upstream: UpstreamConfig, path: Path | None):
    """The sender's target for ``[upstream]`` (key read, signer made); ConfigError naming the key."""
    from .upstream.target import make_target

    return make_target(
        path or Path("hub.toml"),
        upstream.profile,
        upstream.url,
        upstream.app,
        upstream.key_file,
        upstream.signature,
        upstream.timeout_s,
    )
