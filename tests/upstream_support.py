"""Real parts for the upward reporting tests: a hub store full of window and phone ratings, the
expected codes per profile written out by hand, and a sender aimed at a stand-in province."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

from test_hub_support import DEVICE, rating_payload

from core.qrtoken import TokenClaims
from core.store import EventLog
from hub.ratings import phone_rating_row
from hub.storage import HubStore
from hub.upstream import outbox
from hub.upstream.profiles import PROFILES
from hub.upstream.sender import Sender, Target
from hub.upstream.signing import HmacSha256

AREA, DEPT = "370211", "11370211MB0000001X"
KEY = bytes(range(32))
APP = "APPMARK-TEST"
# Internal satisfaction (5 = 非常满意) -> each target's code, and the channel codes, written out by hand.
EXPECTED_SATISFACTION = {name: {5: 5, 4: 4, 3: 3, 2: 2, 1: 1} for name in PROFILES}
EXPECTED_PF = {name: {"window": 4, "phone": 3} for name in PROFILES}
NUMBER_FIELD = {
    "json-v1": "assessNumber",
    "zhejiang-offlinereport": "assessNumber",
    "shandong": "serviceNumber",
}


def case_no(i: int) -> str:
    return f"37021120261129{i:06d}"


def add_window_ratings(
    store: HubStore, folder: Path, count: int, *, seed: int = 0, start: int = 0, item_code: str | None = None
) -> dict[str, int]:
    """``count`` window ratings of distinct cases through the hub's ingest; {case number: satisfaction}."""
    rng = random.Random(seed)
    made = {}
    with EventLog(folder / f"kiosk-{seed}-{start}.db") as log:
        for i in range(start, start + count):
            satisfaction = rng.randint(1, 5)
            payload = rating_payload(i, case_no=case_no(i), satisfaction=satisfaction)
            if item_code:
                payload["item_code"] = item_code
            event = log.append("rating", payload)
            if satisfaction <= 2:
                detail = {"rating_seq": event["seq"], "reasons": ["201", "301"], "contact_sealed": None}
                log.append("rating_detail", detail)
            made[case_no(i)] = satisfaction
        events = list(log.events_after(0))
        for first in range(0, len(events), 1000):
            assert store.ingest(DEVICE, log.log_id, events[first : first + 1000]).conflict is None
    return made


def add_phone_rating(store: HubStore, case: str | None, satisfaction: int, nonce: str) -> bool:
    claims = TokenClaims(
        DEVICE, "03", "0371", case, "11370211MB0000001X", 1_764_000_000, 1_764_000_600, nonce
    )
    reasons = ["101"] if satisfaction <= 2 else []
    case = {"ticket_no": "A001", "item_name": "不动产登记"}  # its case_opened event, at the hub
    row = phone_rating_row(claims, satisfaction, reasons, None, case, "王晓燕", datetime.now().astimezone())
    return store.add_phone_rating(row)


def new_store(folder: Path, url: str | None = None, **codes) -> HubStore:
    store = HubStore(url or f"sqlite:///{folder / 'hub.db'}")
    store.add_device(DEVICE, **({"area_code": AREA, "dept_code": DEPT} | codes))
    return store


def make_sender(store: HubStore, profile: str, url: str, **options) -> Sender:
    target = Target(PROFILES[profile], url, APP, HmacSha256(KEY), options.pop("timeout_s", 2.0))
    return Sender(
        store.engine, target, backoff_base_s=0.01, circuit_open_s=0.2, jitter=lambda: 0.5, **options
    )


def statuses(store: HubStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {k: v for k, v in outbox.counts(conn).items() if v}


def records(store: HubStore) -> list[dict]:
    with store.engine.connect() as conn:
        return outbox.list_records(conn, None, limit=1_000_000)


def unsent(store: HubStore) -> int:
    counted = statuses(store)
    return sum(counted.get(s, 0) for s in ("pending", "failing", "awaiting_detail"))
