"""The bureau's web console: server-rendered pages (Jinja2, Chinese, nothing from a CDN) over the desk.

``templates/base.html`` is the layout every page extends (a nav from ``NAV``, the user, alarms);
``static/`` is served by the hub at /console/static. Sessions and CSRF are in ``session``, the login
throttle (in the database, shared by every hub process) in ``throttle``; the routes in
``hub/routers/console.py``. A page of another area adds its route to its own
router, a template extending base.html, and an entry to ``NAV``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..desk.roles import ADMIN, DEPT, SUPERVISOR, VIEWER

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


@dataclass(frozen=True)
class NavEntry:
    label: str
    href: str
    roles: frozenset[str]


# The console's menu, in order; each entry shown to the roles named.
NAV: list[NavEntry] = [
    NavEntry("总览", "/console/overview", frozenset({ADMIN, SUPERVISOR, DEPT, VIEWER})),
    NavEntry("差评台账", "/console/items", frozenset({SUPERVISOR, DEPT})),
    NavEntry("督办", "/console/items?overdue=1", frozenset({SUPERVISOR})),
    NavEntry("复核", "/console/reviews", frozenset({SUPERVISOR, DEPT})),
    NavEntry("审计日志", "/console/audit", frozenset({SUPERVISOR, ADMIN})),
    NavEntry("通报", "/console/reports", frozenset({ADMIN, SUPERVISOR, DEPT, VIEWER})),
    NavEntry("回访抽样", "/console/sample", frozenset({SUPERVISOR, DEPT})),
    NavEntry("上报省平台", "/console/upstream", frozenset({SUPERVISOR, ADMIN})),
    NavEntry("用户与科室", "/console/users", frozenset({ADMIN})),
    NavEntry("设置", "/console/settings", frozenset({ADMIN, SUPERVISOR, DEPT, VIEWER})),
    NavEntry("设备", "/console/devices", frozenset({ADMIN, SUPERVISOR, DEPT})),  # hub/routers/fleet.py
]

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(("html",)),
    trim_blocks=True,
    lstrip_blocks=True,
)


def local_time(iso: str | None) -> str:
    """A stored UTC time as the hub's local ``yyyy-MM-dd HH:mm:ss``."""
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


templates.filters["local"] = local_time
