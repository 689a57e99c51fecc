"""Real parts for the desk tests: a hub in a thread with sections, devices, users and tokens, and 差评
uploaded the way the kiosks send them (signed event batches). Holds no tests itself."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import requests
from test_hub_support import ThreadHub, post_events, rating_payload, register

from core.contact import seal_contact
from core.store import EventLog
from hub.desk.settings import AlertTarget, DeskSettings
from hub.desk.store import DeskStore
from hub.keys import key_file_path
from hub.storage import HubStore, database_url

PHONE = "13912345678"


class Clock:
    """The desk's "today", moved by the test."""

    def __init__(self):
        self.day = date.today()

    def __call__(self) -> date:
        return self.day

    def advance(self, days: int) -> None:
        self.day += timedelta(days=days)


@dataclass
class Desk:
    hub: ThreadHub
    store: HubStore
    desk: DeskStore
    clock: Clock
    tokens: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, bytes] = field(default_factory=dict)
    logs: dict[str, EventLog] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.hub.url

    def api(self, user: str, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        return requests.request(method, f"{self.url}/api/v1/manage{path}", headers=headers, timeout=10, **kw)

    def bad_rating(
        self, device: str, case_no: str, *, satisfaction: int = 1, phone: str | None = PHONE
    ) -> int:
        """A 差评 with reasons and a sealed phone number, uploaded from ``device``'s log; its item id."""
        log = self.logs[device]
        head = log.head_seq()
        seq = log.append("rating", rating_payload(head + 1, case_no=case_no, satisfaction=satisfaction))[
            "seq"
        ]
        sealed = seal_contact(phone, self.store.private_key.public_key) if phone else None
        log.append("rating_detail", {"rating_seq": seq, "reasons": ["101", "201"], "contact_sealed": sealed})
        response = post_events(
            self.url, self.secrets[device], log.log_id, list(log.events_after(head)), device
        )
        assert response.status_code == 200, response.text
        page, _ = self.desk.list_items(_SUPERVISOR, _ALL, limit=1)
        return page[0]["id"]


def _principal():
    from hub.desk.roles import SUPERVISOR, Principal
    from hub.desk.store import ItemFilter

    return Principal("test", SUPERVISOR), ItemFilter()


_SUPERVISOR, _ALL = _principal()

USERS = {
    "admin": ("admin", None),
    "sup": ("supervisor", None),
    "d1": ("dept", "D1"),
    "d2": ("dept", "D2"),
    "view": ("viewer", None),
}


@contextlib.contextmanager
def desk_hub(
    tmp: Path, url: str | None = None, alerts: tuple[AlertTarget, ...] = (), public_url: str = ""
) -> Iterator[Desk]:
    store = HubStore(url or database_url(tmp, None), key_file_path(tmp, None))
    clock = Clock()
    # Years after the package's, so the tests pass whenever they run; not a real schedule.
    calendar_file = tmp / "calendar.toml"
    calendar_file.write_text('["2027"]\nholidays = []\n["2028"]\nholidays = []\n', encoding="utf-8")
    settings = DeskSettings(alerts=alerts, public_url=public_url, today=clock, calendar_file=calendar_file)
    hub = ThreadHub(store, desk=settings)
    desk: DeskStore = hub.app_desk
    env = Desk(hub, store, desk, clock)
    try:
        desk.add_section("D1", "不动产登记科")
        desk.add_section("D2", "社保科")
        for device, dept in (("W1", "D1"), ("W2", "D2")):
            env.secrets[device] = register(store, device)
            desk.set_device_section(device, dept)
            env.logs[device] = EventLog(tmp / f"{device}.db")
        for name, (role, dept) in USERS.items():
            env.passwords[name] = desk.add_user(name, role, dept)
            env.tokens[name] = desk.new_token(name)
        yield env
    finally:
        for log in env.logs.values():
            log.close()
        hub.stop()
        store.close()
