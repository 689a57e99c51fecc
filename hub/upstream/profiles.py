"""Upward profiles: for each target, one explicit table from what the hub holds of a rating to the
target's record, plus its envelope, signature and answer rule. No I/O here.

What the hub holds is an ``UpstreamRating`` (profile-neutral; satisfaction in the hub's one internal
code, 5 = 非常满意). A profile maps it to a record, or says which required fields are missing or
unusable (``NeedsLinkage``): a record is never completed with a default, and a satisfaction is never
invented. The tables are printed in docs/upstream.md.

- ``json-v1``: the reference profile (docs/upstream.md): ``{"records": [...]}``, up to 100, HMAC-SHA256
  headers, an answer per record.
- ``zhejiang-offlinereport``: the Zhejiang ``offlinereport`` field list; one record per request (the
  public sources give the fields, not a per-record answer, so one request answers for one record).
- ``shandong``: the envelope ``{txnBodyCom: {sign, params: {evaluate: [...]}, time, appMark},
  txnCommCom: {}}``; success is ``C-Response-Desc: success`` with a body whose ``success`` is not
  "false"; the hall code's local status 1 (ok), 98 (refused: a person looks), 99 (transport: retried).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .signing import HMAC_SHA256, Signer

WINDOW, PHONE = "window", "phone"  # the two channels a rating reaches this hub by

# Satisfaction: the hub's internal code (5 = 非常满意) -> the target's code.
OPERATIONAL_SATISFACTION = {5: 5, 4: 4, 3: 3, 2: 2, 1: 1}  # 1 非常不满意 … 5 非常满意 (Zhejiang, Shandong)
GBT39046_SATISFACTION = {5: 1, 4: 2, 3: 3, 2: 4, 1: 5}  # GB/T 39046-2020 A.8: 1 非常满意 … 5 非常不满意
# 评价渠道 (pf): the window evaluator is 4 政务大厅平板电脑, the QR code page on a phone 3 二维码.
OPERATIONAL_PF = {WINDOW: 4, PHONE: 3}

# Time formats by the names the interface documents use.
TIME_FORMATS = {
    "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
    "yyyyMMddHHmmss": "%Y%m%d%H%M%S",
    "YYYYMMDDThhmmss": "%Y%m%dT%H%M%S",  # GB/T 39046-2020 表9
}
HUB_TIME = "%Y-%m-%d %H:%M:%S"  # assess_time as the hub stores it (local time of the rating)
EXCERPT_CHARS = 200


@dataclass(frozen=True)
class UpstreamRating:
    """One rating as the hub holds it, profile-neutral. ``None`` is "the hub does not have it"."""

    project_no: str | None  # 办件编号 (the case number), or as a person linked it
    assess_number: int | None  # 1 the case's first rating at this hub, 2 its second…
    task_code: str | None  # 事项编码
    task_name: str | None  # 事项名称
    channel: str  # WINDOW or PHONE
    satisfaction: int  # internal: 5 非常满意 … 1 非常不满意
    reasons: tuple[str, ...] | None  # reason codes; None when no detail came with the rating
    assessed_at: str  # yyyy-MM-dd HH:mm:ss, local time of the rating
    area_code: str | None  # 行政区划 of the device
    dept_code: str | None  # 统一社会信用代码 of the device's department
    staff_name: str | None = None  # the staff member who served (办理人)


@dataclass(frozen=True)
class NeedsLinkage:
    """The record cannot be made: each problem names a target field and why."""

    problems: tuple[str, ...]

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


# --- field rules ---------------------------------------------------------------------------------------


def _text(limit: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip():
            return "missing"
        return f"longer than {limit} characters" if len(value) > limit else None

    return check


def _pattern(regex: str, what: str) -> Callable[[Any], str | None]:
    compiled = re.compile(regex)

    def check(value: Any) -> str | None:
        if value is None or value == "":
            return "missing"
        return None if isinstance(value, str) and compiled.fullmatch(value) else f"not {what}"

    return check


def _number_range(low: int, high: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if value is None:
            return "missing"
        return None if low <= value <= high else f"{value} is outside {low}-{high} for this target"

    return check


def _always(_value: Any) -> str | None:
    return None


def _code(table: Mapping[Any, int]) -> Callable[[Any], Any]:
    return lambda value: table[value]


def _time(name: str) -> Callable[[str], str]:
    out = TIME_FORMATS[name]

    def encode(value: str) -> str:
        parsed = datetime.fromisoformat(value)  # ValueError for anything but a date and time
        if out == HUB_TIME and len(value) == 19 and value[10] == " ":
            return value  # already in the target's form
        return parsed.strftime(out)

    return encode


def _reasons(value: tuple[str, ...] | None) -> str | None:
    return ",".join(value) if value else None  # none given: null, not an empty code list


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Field:
    """One row of a profile's table: the target's field, where its value comes from, and its rules.

    ``check`` returns a problem text (the field is missing or unusable) or None; a required field with a
    problem makes the record wait for a person. An optional field the hub does not have is sent as null.
    """

    name: str
    source: str  # an UpstreamRating attribute
    required: bool
    encode: Callable[[Any], Any] = _same
    check: Callable[[Any], str | None] = _always
    note: str = ""


def map_record(fields: Sequence[Field], rating: UpstreamRating) -> dict[str, Any] | NeedsLinkage:
    record: dict[str, Any] = {}
    problems: list[str] = []
    for f in fields:
        value = getattr(rating, f.source)
        problem = f.check(value)
        if problem and f.required:
            problems.append(f"{f.name}: {problem}")
        elif value is None or problem:
            record[f.name] = None
        else:
            try:
                record[f.name] = f.encode(value)
            except (ValueError, KeyError):
                if f.required:
                    problems.append(f"{f.name}: {value!r} is not usable")
                else:
                    record[f.name] = None
    return NeedsLinkage(tuple(problems)) if problems else record


# --- answers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The target's word on one record of a batch: accepted (ok) or refused with its message."""

    ok: bool
    message: str = ""


@dataclass(frozen=True)
class Failure:
    """No usable word on the batch (5xx, 429, a broken answer…): retry it. ``detail`` is a bounded excerpt."""

    detail: str
    retry_after: str | None = None  # the Retry-After header as sent, if any


@dataclass(frozen=True)
class Request:
    body: bytes
    headers: dict[str, str]


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """At most ``limit`` characters of an answer, printable, for a log line or lastError."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _status_failure(status: int, headers: Mapping[str, str], body: bytes) -> Failure | None:
    if status == 200:
        return None
    return Failure(
        f"HTTP {status}: {excerpt(body)}", headers.get("retry-after") if status in (429, 503) else None
    )


def _json_answer(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


# --- the profiles ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    fields: tuple[Field, ...]
    max_batch: int
    satisfaction: Mapping[int, int]
    pf: Mapping[str, int]
    default_signature: str
    signatures: tuple[str, ...]  # the algorithms a deployment may choose for this target
    build: Callable[[Sequence[dict[str, Any]], str, Signer, datetime], Request]
    read: Callable[[int, Mapping[str, str], bytes, Sequence[tuple[str, int]]], list[Outcome] | Failure]
    key_fields: tuple[str, str]  # the record's names of projectNo and assessNumber
    per_record_answer: bool  # False: the answer speaks for the whole batch

    def map(self, rating: UpstreamRating) -> dict[str, Any] | NeedsLinkage:
        return map_record(self.fields, rating)

    def request(self, records: Sequence[dict[str, Any]], app: str, signer: Signer, now: datetime) -> Request:
        if not 1 <= len(records) <= self.max_batch:
            raise ValueError(f"{self.name} takes 1-{self.max_batch} records per request")
        return self.build(records, app, signer, now)

    def answer(
        self, status: int, headers: Mapping[str, str], body: bytes, keys: Sequence[tuple[str, int]]
    ) -> list[Outcome] | Failure:
        """The outcome of each record (in order), or a Failure to retry; never raises on what was sent.
        ``headers`` must have lower-case names."""
        try:
            return self.read(status, headers, body, keys)
        except Exception as e:  # noqa: BLE001 - any surprise in an answer is a failure to retry, not a crash
            return Failure(f"unreadable answer ({type(e).__name__}): {excerpt(body)}")


# json-v1 ------------------------------------------------------------------------------------------

# Fields several profiles carry alike (each profile's table below lists its own, in its order).
PROJECT_NO = Field("projectNo", "project_no", True, check=_text(50), note="办件编号, at most 50 characters")
TASK_CODE = Field("taskCode", "task_code", True, check=_text(64), note="事项编码")
TASK_NAME = Field("taskName", "task_name", True, check=_text(200), note="事项名称")
HALL_PF = Field("pf", "channel", True, _code(OPERATIONAL_PF), note="4 政务大厅平板电脑, 3 二维码")
SATISFACTION = Field(
    "satisfaction", "satisfaction", True, _code(OPERATIONAL_SATISFACTION), note="1 非常不满意 … 5 非常满意"
)
EVAL_DETAIL = Field("evalDetail", "reasons", False, _reasons, note="reason codes, comma-separated")
ASSESS_TIME = Field(
    "assessTime", "assessed_at", True, _time("yyyy-MM-dd HH:mm:ss"), note="yyyy-MM-dd HH:mm:ss"
)
AREA_CODE = Field(
    "areaCode", "area_code", True, check=_pattern(r"\d{6,9}", "6-9 digits"), note="行政区划, 6-9 digits"
)
DEPT_CODE = Field(
    "deptCode", "dept_code", True, check=_pattern(r"[0-9A-Z]{18}", "18 characters"), note="统一社会信用代码"
)

JSON_V1_FIELDS = (
    PROJECT_NO,
    Field(
        "assessNumber", "assess_number", True, check=_number_range(1, 99), note="评价次数: 1 first, 2 second…"
    ),
    TASK_CODE,
    Field("taskName", "task_name", False, note="事项名称"),
    Field("pf", "channel", True, _code(OPERATIONAL_PF), note="4 the window evaluator, 3 the QR code page"),
    SATISFACTION,
    EVAL_DETAIL,
    ASSESS_TIME,
    AREA_CODE,
    Field(
        "deptCode",
        "dept_code",
        False,
        check=_pattern(r"[0-9A-Z]{18}", "18 characters"),
        note="统一社会信用代码",
    ),
    Field("proManager", "staff_name", False, note="the staff member who served"),
)


def _hmac_headers(app: str, signer: Signer, timestamp: str, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json; charset=utf-8",
        "X-Upstream-App": app,
        "X-Upstream-Timestamp": timestamp,
        "X-Upstream-Signature": signer.sign(timestamp.encode() + b"\n" + body),
    }


def _json_v1_request(records, app, signer, now) -> Request:
    body = _json_bytes({"records": list(records)})
    return Request(body, _hmac_headers(app, signer, str(int(now.timestamp())), body))


def _json_v1_read(status, headers, body, keys) -> list[Outcome] | Failure:
    failure = _status_failure(status, headers, body)
    if failure:
        return failure
    answer = _json_answer(body)
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != len(keys):
        return Failure(f"answer without one result per record: {excerpt(body)}")
    outcomes = []
    for (project_no, number), result in zip(keys, results, strict=True):
        if (
            not isinstance(result, dict)
            or result.get("projectNo") != project_no
            or str(result.get("assessNumber")) != str(number)
            or result.get("status") not in ("ok", "rejected")
        ):
            return Failure(f"answer out of record order or with an unknown status: {excerpt(body)}")
        message = result.get("message")
        outcomes.append(
            Outcome(result["status"] == "ok", excerpt(message if isinstance(message, str) else ""))
        )
    return outcomes


JSON_V1 = Profile(
    name="json-v1",
    fields=JSON_V1_FIELDS,
    max_batch=100,
    satisfaction=OPERATIONAL_SATISFACTION,
    pf=OPERATIONAL_PF,
    default_signature=HMAC_SHA256,
    signatures=(HMAC_SHA256,),
    build=_json_v1_request,
    read=_json_v1_read,
    key_fields=("projectNo", "assessNumber"),
    per_record_answer=True,
)

# zhejiang-offlinereport ---------------------------------------------------------------------------

ZHEJIANG_FIELDS = (
    PROJECT_NO,
    Field(
        "assessNumber",
        "assess_number",
        True,
        check=_number_range(1, 2),
        note="1 首次, 2 二次 (a third rating waits for a person)",
    ),
    TASK_CODE,
    TASK_NAME,
    HALL_PF,
    SATISFACTION,
    EVAL_DETAIL,
    ASSESS_TIME,
    AREA_CODE,
    DEPT_CODE,
    Field("proManager", "staff_name", False, note="办理人"),
)


def _zhejiang_request(records, app, signer, now) -> Request:
    (record,) = records
    body = _json_bytes(record)
    return Request(body, _hmac_headers(app, signer, str(int(now.timestamp())), body))


def _zhejiang_read(status, headers, body, keys) -> list[Outcome] | Failure:
    failure = _status_failure(status, headers, body)
    if failure:
        return failure
    answer = _json_answer(body)
    if not isinstance(answer, dict) or "code" not in answer:
        return Failure(f"answer without a code: {excerpt(body)}")
    message = answer.get("msg")
    text = excerpt(message if isinstance(message, str) else "")
    return [Outcome(str(answer["code"]) == "200", text)]


ZHEJIANG = Profile(
    name="zhejiang-offlinereport",
    fields=ZHEJIANG_FIELDS,
    max_batch=1,
    satisfaction=OPERATIONAL_SATISFACTION,
    pf=OPERATIONAL_PF,
    default_signature=HMAC_SHA256,
    signatures=(HMAC_SHA256, "sm2-sm3"),
    build=_zhejiang_request,
    read=_zhejiang_read,
    key_fields=("projectNo", "assessNumber"),
    per_record_answer=True,
)

# shandong -----------------------------------------------------------------------------------------

SHANDONG_FIELDS = (
    PROJECT_NO,
    Field(
        "serviceNumber",
        "assess_number",
        True,
        check=_number_range(1, 2),
        note="评价次数 (the hall code's assessNumber)",
    ),
    TASK_CODE,
    TASK_NAME,
    HALL_PF,
    SATISFACTION,
    EVAL_DETAIL,
    ASSESS_TIME,
    Field(
        "areaCode",
        "area_code",
        True,
        check=_pattern(r"\d{6,12}", "6-12 digits"),
        note="行政区划, 6-12 digits",
    ),
    DEPT_CODE,
)
SHANDONG_TIME = "yyyyMMddHHmmss"
SHANDONG_OK, SHANDONG_REFUSED, SHANDONG_TRANSPORT = 1, 98, 99  # the hall code's local status


def shandong_sign_text(time: str, app: str, params: Mapping[str, Any]) -> bytes:
    """What the envelope's ``sign`` signs: the time, the appMark and the params as sent."""
    return time.encode() + app.encode() + _json_bytes(params)


def _shandong_request(records, app, signer, now) -> Request:
    time = now.strftime(TIME_FORMATS[SHANDONG_TIME])
    params = {"evaluate": list(records)}
    body = _json_bytes(
        {
            "txnBodyCom": {
                "sign": signer.sign(shandong_sign_text(time, app, params)),
                "params": params,
                "time": time,
                "appMark": app,
            },
            "txnCommCom": {},
        }
    )
    return Request(body, {"Content-Type": "application/json; charset=utf-8"})


def _shandong_read(status, headers, body, keys) -> list[Outcome] | Failure:
    failure = _status_failure(status, headers, body)
    if failure:
        return failure
    answer = _json_answer(body)
    if not isinstance(answer, dict):
        return Failure(f"answer is not a JSON object: {excerpt(body)}")
    # The header by the interface's description; the public hall code reads the same name in the body.
    desc = headers.get("c-response-desc") or answer.get("C-Response-Desc")
    if not isinstance(desc, str):
        return Failure(f"answer without C-Response-Desc: {excerpt(body)}")
    success = answer.get("success")
    if desc == "success" and str(success).lower() != "false":
        return [Outcome(True)] * len(keys)
    message = answer.get("msg") or answer.get("message") or desc
    return [Outcome(False, excerpt(str(message)))] * len(keys)


SHANDONG = Profile(
    name="shandong",
    fields=SHANDONG_FIELDS,
    max_batch=50,
    satisfaction=OPERATIONAL_SATISFACTION,
    pf=OPERATIONAL_PF,
    default_signature=HMAC_SHA256,
    signatures=(HMAC_SHA256, "sm2-sm3"),
    build=_shandong_request,
    read=_shandong_read,
    key_fields=("projectNo", "serviceNumber"),
    per_record_answer=False,
)

PROFILES: dict[str, Profile] = {p.name: p for p in (JSON_V1, ZHEJIANG, SHANDONG)}


def shandong_local_status(status: str) -> int | None:
    """The Shandong hall code's local status of an outbox status: 1 sent, 98 rejected, 99 failing."""
    return {"sent": SHANDONG_OK, "rejected": SHANDONG_REFUSED, "failing": SHANDONG_TRANSPORT}.get(status)


def mapping_table(profile: Profile) -> str:
    """The profile's table as Markdown (docs/upstream.md shows it; a test keeps the two the same)."""
    sources = {
        "project_no": "case number (办件编号), or as a person linked it",
        "assess_number": "the rating's number among its case's ratings at this hub",
        "task_code": "item code (事项编码) of the rating",
        "task_name": "item name (事项名称) of the rating",
        "channel": "window evaluator or QR code page",
        "satisfaction": "satisfaction (internal 5 = 非常满意)",
        "reasons": "reason codes of the 差评",
        "assessed_at": "time of the rating (local)",
        "area_code": "the device's `--area-code`",
        "dept_code": "the device's `--dept-code`",
        "staff_name": "the staff member's name",
    }
    lines = ["| field | from | required | codes / form |", "|---|---|---|---|"]
    for f in profile.fields:
        codes = f.note
        if f.source == "satisfaction":
            codes = ", ".join(f"{k}→{v}" for k, v in sorted(profile.satisfaction.items(), reverse=True))
            codes += " (internal→target; " + f.note + ")"
        elif f.source == "channel":
            codes = ", ".join(f"{k} {v}" for k, v in profile.pf.items())
        lines.append(
            f"| `{f.name}` | {sources[f.source]} | {'yes' if f.required else 'no (null)'} | {codes} |"
        )
    return "\n".join(lines)
