"""A small record whose figures were computed by hand (docs/figures.md has the same table).

Window 03 (device XHA-W03, section A 企业服务科) on 2026-11-02, staff 0371 王晓燕:
  C1 事项 I1 rated 5 · C2 事项 I2 skipped at the window (timeout) and rated 2 by phone ·
  C3 事项 I1 rated 1 with a phone number, then marked 不属实 by 复核 · a walk-in rated 4 ·
  after sign-out C4 事项 I2 skipped (no_staff).
Window 05 (device XHA-W05, section B 社会事务科) on 2026-11-03, staff 0402 李强:
  C5 事项 I1 rated 3 · C6 事项 I1 rated 2 with a phone number, called back (reached) and closed on time.

By section, with today 2026-11-30:
  A: services 5 (1 walk-in), skipped 2, rated 4 (1 by phone), good 2, bad 2, not_adopted 1:
     满意率 2/(4−1) = 2/3, 参评率 4/5, 差评率 1/3; the phone 差评 has no phone number (回访率 none),
     is past its deadline and open (on-time 0/1).
  B: services 2, rated 2, good 1, bad 1: 满意率 1/2, 参评率 1; 回访率 1/1; on time 1/1.
  The bureau: services 7, rated 6, good 3, bad 3, not_adopted 1: 满意率 3/5, 参评率 6/7.
"""

from __future__ import annotations

import uuid

from core.events import ZERO_HASH, event_hash

W03, W05 = "XHA-W03", "XHA-W05"
DEPT_A, DEPT_B = "A", "B"
SEALED = "sealed-phone-number"  # stands for a sealed contact (the figures only ask whether there is one)


def chain(log_id: str, items: list[tuple[str, str, dict]]) -> list[dict]:
    """Events (type, at, payload) as a hash-chained log."""
    out, prev = [], ZERO_HASH
    for seq, (kind, at, payload) in enumerate(items, start=1):
        e = {
            "log_id": log_id,
            "seq": seq,
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{log_id}/{seq}")),
            "type": kind,
            "at": at,
            "payload": payload,
            "prev_hash": prev,
        }
        e["hash"] = event_hash(e)
        out.append(e)
        prev = e["hash"]
    return out


def case(case_no, item_code, source="queue"):
    return {
        "ticket_no": None,
        "case_no": case_no,
        "item_code": item_code,
        "item_name": {"I1": "企业设立登记", "I2": "社保卡补办"}.get(item_code),
        "source": source,
    }


def rating(case_seq, staff_no, staff_name, window, case_no, item_code, satisfaction):
    return {
        "case_seq": case_seq,
        "staff_no": staff_no,
        "staff_name": staff_name,
        "window": window,
        "ticket_no": None,
        "case_no": case_no,
        "item_code": item_code,
        "item_name": {"I1": "企业设立登记", "I2": "社保卡补办"}.get(item_code),
        "satisfaction": satisfaction,
        "input": "touch",
    }


def t(day: str, clock: str) -> str:
    return f"2026-11-{day}T{clock}.000+08:00"


LOG_W03 = "00000000-0000-4000-8000-000000000003"
LOG_W05 = "00000000-0000-4000-8000-000000000005"

EVENTS_W03 = chain(
    LOG_W03,
    [
        ("staff_signin", t("02", "09:00:00"), {"staff_no": "0371", "staff_name": "王晓燕"}),
        ("case_opened", t("02", "09:10:00"), case("C1", "I1")),  # 2
        ("rating", t("02", "09:10:05"), rating(2, "0371", "王晓燕", "03", "C1", "I1", 5)),  # 3
        ("case_opened", t("02", "09:20:00"), case("C2", "I2")),  # 4
        ("rating_skipped", t("02", "09:21:00"), {"case_seq": 4, "why": "timeout"}),  # 5
        ("case_opened", t("02", "09:30:00"), case("C3", "I1")),  # 6
        ("rating", t("02", "09:30:05"), rating(6, "0371", "王晓燕", "03", "C3", "I1", 1)),  # 7: 不属实 later
        (
            "rating_detail",
            t("02", "09:30:20"),
            {"rating_seq": 7, "reasons": ["101"], "contact_sealed": SEALED},
        ),
        ("case_opened", t("02", "09:40:00"), case(None, None, "walkin")),  # 9
        ("rating", t("02", "09:40:00"), rating(9, "0371", "王晓燕", "03", None, None, 4)),  # 10
        ("staff_signout", t("02", "12:00:00"), {"staff_no": "0371"}),
        ("case_opened", t("02", "12:05:00"), case("C4", "I2")),  # 12
        ("rating_skipped", t("02", "12:05:00"), {"case_seq": 12, "why": "no_staff"}),
    ],
)

EVENTS_W05 = chain(
    LOG_W05,
    [
        ("staff_signin", t("03", "09:00:00"), {"staff_no": "0402", "staff_name": "李强"}),
        ("case_opened", t("03", "10:00:00"), case("C5", "I1")),  # 2
        ("rating", t("03", "10:00:05"), rating(2, "0402", "李强", "05", "C5", "I1", 3)),
        ("case_opened", t("03", "11:00:00"), case("C6", "I1")),  # 4
        ("rating", t("03", "11:00:05"), rating(4, "0402", "李强", "05", "C6", "I1", 2)),  # 5
        (
            "rating_detail",
            t("03", "11:00:30"),
            {"rating_seq": 5, "reasons": ["201"], "contact_sealed": SEALED},
        ),
    ],
)

# The phone rating of case C2 (rated on the phone after the window's countdown ran out).
PHONE_C2 = {
    "device_id": W03,
    "nonce": "00112233445566aa",
    "window": "03",
    "staff_no": "0371",
    "staff_name": "王晓燕",
    "ticket_no": None,
    "case_no": "C2",
    "item_code": "I2",
    "item_name": "社保卡补办",
    "satisfaction": 2,
    "reasons": "201",
    "contact_sealed": None,
    "issued_at": 1793668860,
    "at": "2026-11-02T01:22:00+00:00",
    "assess_time": "2026-11-02 09:22:00",
}

EXPECTED_BY_DEPT = {
    DEPT_A: {
        "services": 5,
        "walkin": 1,
        "skipped": 2,
        "rated": 4,
        "phone": 1,
        "good": 2,
        "bad": 2,
        "not_adopted": 1,
        "satisfactionRate": 2 / 3,
        "participationRate": 4 / 5,
        "badRate": 1 / 3,
        "callbackRate": None,
        "onTimeRate": 0.0,
    },
    DEPT_B: {
        "services": 2,
        "walkin": 0,
        "skipped": 0,
        "rated": 2,
        "phone": 0,
        "good": 1,
        "bad": 1,
        "not_adopted": 0,
        "satisfactionRate": 1 / 2,
        "participationRate": 1.0,
        "badRate": 1 / 2,
        "callbackRate": 1.0,
        "onTimeRate": 1.0,
    },
}
EXPECTED_TOTAL = {"services": 7, "rated": 6, "good": 3, "bad": 3, "not_adopted": 1, "satisfactionRate": 3 / 5}
EXPECTED_BY_STAFF = {  # (services, rated, good, bad, not_adopted)
    "0371": (4, 4, 2, 2, 1),
    "": (1, 0, 0, 0, 0),
    "0402": (2, 2, 1, 1, 0),
}
EXPECTED_BY_ITEM = {"I1": (4, 4, 2, 2, 1), "I2": (2, 1, 0, 1, 0), "": (1, 1, 1, 0, 0)}
EXPECTED_BY_DAY = {"2026-11-02": (5, 4, 2, 2, 1), "2026-11-03": (2, 2, 1, 1, 0)}
