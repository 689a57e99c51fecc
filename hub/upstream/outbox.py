"""The outbox: one record per rating the hub holds, keyed by (projectNo, assessNumber), written in the
transaction that stores the rating (``enqueue_window`` from the ingest of a kiosk's events,
``enqueue_phone`` from the phone page), and every person's action on it, appended.

A record points at its rating (``ratings`` row or ``phone_ratings`` row); what is sent is mapped from
that rating at send time, so a device's codes fixed later are what the target gets. ``assess_number``
is the rating's place among the ratings of its case number at this hub (1 the first, 2 the second…),
decided under a per-case advisory lock on PostgreSQL (SQLite serialises writers anyway). A rating
without a case number has neither until a person links it (``link``: an appended action).

Claims for sending are leases: the sender takes due records with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL and marks them with its own token and an expiry far beyond its HTTP timeout, so two hub
processes never send one record at the same time, and a crashed sender's records come free again.
"""

from __future__ import annotations

import functools
import json
import secrets
import zlib
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from ..schema import devices, metadata, phone_ratings, ratings
from . import rules
from .profiles import PHONE, WINDOW, UpstreamRating

outbox = Table(
    "upstream_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(8), nullable=False),  # window | phone
    Column("device_id", String(64), nullable=False),
    Column("log_id", String(64)),  # window: the rating event's log and seq
    Column("seq", BigInteger),
    Column("nonce", String(16)),  # phone: the token's nonce
    Column("project_no", Text),  # the case number, or the one a person linked
    Column("assess_number", Integer),
    Column("task_code", Text),  # as a person linked it (None: the rating's own)
    Column("task_name", Text),
    Column("assess_day", String(10), nullable=False),  # yyyy-MM-dd of the rating, for reconciliation
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False, default=0.0),  # unix seconds
    Column("lease_owner", String(32)),
    Column("lease_until", Float),
    Column("last_error", Text),  # the last failure or the reason it waits, bounded
    Column("message", Text),  # the target's refusal message
    Column("created_at", String(40), nullable=False),
    Column("sent_at", String(40)),
    UniqueConstraint("project_no", "assess_number", name="upstream_outbox_key"),
    UniqueConstraint("device_id", "log_id", "seq", name="upstream_outbox_window"),
    UniqueConstraint("device_id", "nonce", name="upstream_outbox_phone"),
    Index("upstream_outbox_due", "status", "next_attempt_at", "id"),
    Index("upstream_outbox_lease", "lease_owner"),
    Index("upstream_outbox_day", "assess_day"),
    Index("upstream_outbox_status_id", "status", "id"),  # the console's list by status
)

actions = Table(
    "upstream_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, nullable=False, index=True),
    Column("at", String(40), nullable=False),
    Column("who", Text, nullable=False),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # JSON: the note, the linked fields, the status before and after
)


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


CASE_LOCK_SPACE = 0x75707374  # the advisory locks' first key: the case's own is its CRC-32
_CASE_LOCKS = "upstream_case_locks"  # connection info: (transaction, keys of the case locks it holds)


def _next_assess_number(conn: Connection, project_no: str) -> int:
    lock_cases(conn, [project_no])
    held = conn.execute(
        select(func.max(outbox.c.assess_number)).where(outbox.c.project_no == project_no)
    ).scalar()
    return (held or 0) + 1


def lock_cases(conn: Connection, project_nos: Iterable[str]) -> None:
    """The per-case locks of ``project_nos`` (PostgreSQL; SQLite serialises writers anyway), in one
    statement, in the order of their keys (two transactions sharing cases never wait for each other in a
    circle), each taken once per transaction: an upload takes its ratings' cases before it derives them,
    and the outbox then needs no second round trip for them."""
    if conn.dialect.name != "postgresql":
        return
    transaction = conn.get_transaction()
    taken_in, taken = conn.info.get(_CASE_LOCKS, (None, frozenset()))
    if taken_in is not transaction:
        taken = frozenset()
    keys = sorted(set(case_lock_keys(project_nos)) - taken)
    if not keys:
        return
    conn.execute(text(CASE_LOCKS_SQL), {"a": CASE_LOCK_SPACE, "keys": keys})
    conn.info[_CASE_LOCKS] = (transaction, taken | set(keys))


# Every case lock of a statement taken in the order of their keys: two transactions sharing cases never
# wait for each other in a circle.
CASE_LOCKS_SQL = (
    "SELECT count(pg_advisory_xact_lock(:a, k)) FROM "
    "(SELECT k FROM unnest(CAST(:keys AS integer[])) AS k ORDER BY k) AS ordered"
)


def case_lock_keys(project_nos: Iterable[str]) -> list[int]:
    """The advisory lock keys (second half; the first is ``CASE_LOCK_SPACE``) of these cases, sorted."""
    return sorted({zlib.crc32(p.encode("utf-8")) - 2**31 for p in project_nos if p})


def _new_record(conn: Connection, *, project_no: str | None, waits_for_detail: bool, **source: Any) -> dict:
    number = _next_assess_number(conn, project_no) if project_no else None
    return _record(project_no, number, waits_for_detail, **source)


def _record(project_no: str | None, number: int | None, waits_for_detail: bool, **source: Any) -> dict:
    if project_no:
        status, why = (rules.AWAITING_DETAIL if waits_for_detail else rules.PENDING), None
    else:
        status, why = rules.NEEDS_LINKAGE, "projectNo: missing (no case number at the window)"
    return {
        **source,
        "project_no": project_no or None,
        "assess_number": number,
        "status": status,
        "attempts": 0,
        "next_attempt_at": 0.0,
        "last_error": why,
        "created_at": utc_now_iso(),
    }


def enqueue_window(conn: Connection, device_id: str, log_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """One record per rating row just derived from a kiosk's events (in that transaction). A 差评 waits
    for its reasons: the kiosk always writes a rating_detail after one. The batch's cases are locked
    together, in one order (two uploads sharing cases never wait for each other in a circle), then
    numbered from one read, and the records inserted in one statement."""
    if not rows:
        return
    cases = sorted({r["case_no"] for r in rows if r["case_no"]})
    lock_cases(conn, cases)
    held: dict[str, int] = {}
    if cases:
        held = dict(
            conn.execute(
                select(outbox.c.project_no, func.max(outbox.c.assess_number))
                .where(outbox.c.project_no.in_(cases))
                .group_by(outbox.c.project_no)
            ).all()
        )
    conn.execute(insert(outbox), window_records(device_id, log_id, rows, held))


def window_records(
    device_id: str,
    log_id: str,
    rows: Sequence[dict[str, Any]],
    held: dict[str, int],
    detailed: Set[int] = frozenset(),
) -> list[dict[str, Any]]:
    """The outbox records of rating rows just derived from one log, numbered after ``held`` (each case's
    highest assess_number, read under the cases' locks; updated here). A 差评 waits for its reasons unless
    its rating_detail came in the same batch (its seq in ``detailed``): one definition for the ingest's
    two paths."""
    records = []
    for r in rows:
        project_no = r["case_no"] or None
        number = None
        if project_no:
            number = held[project_no] = (held.get(project_no) or 0) + 1
        records.append(
            _record(
                project_no,
                number,
                r["satisfaction"] <= 2 and r["seq"] not in detailed,
                channel=WINDOW,
                device_id=device_id,
                log_id=log_id,
                seq=r["seq"],
                assess_day=r["assess_time"][:10],
                nonce=None,
            )
        )
    return records


def details_arrived(conn: Connection, device_id: str, log_id: str, rating_seqs: Iterable[int]) -> None:
    seqs = list(rating_seqs)
    if seqs:
        conn.execute(
            update(outbox)
            .where(
                (outbox.c.device_id == device_id)
                & (outbox.c.log_id == log_id)
                & outbox.c.seq.in_(seqs)
                & (outbox.c.status == rules.AWAITING_DETAIL)
            )
            .values(status=rules.PENDING)
        )


def enqueue_phone(conn: Connection, row: dict[str, Any]) -> None:
    """The record of a phone rating just stored (in that transaction); its reasons come with it."""
    conn.execute(
        insert(outbox).values(
            _new_record(
                conn,
                project_no=row["case_no"],
                waits_for_detail=False,
                channel=PHONE,
                device_id=row["device_id"],
                nonce=row["nonce"],
                assess_day=row["assess_time"][:10],
            )
        )
    )


# --- what the sender reads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    status: str
    attempts: int
    rating: UpstreamRating
    waits_for_detail: bool  # a window 差评 whose reasons have not arrived


@functools.cache
def _source_query():
    w, p, d = ratings.alias("w"), phone_ratings.alias("p"), devices.alias("d")
    pick = lambda a, b: case((outbox.c.channel == WINDOW, a), else_=b)  # noqa: E731
    query = (
        select(
            outbox.c.id,
            outbox.c.status,
            outbox.c.attempts,
            outbox.c.channel,
            outbox.c.project_no,
            outbox.c.assess_number,
            func.coalesce(outbox.c.task_code, pick(w.c.item_code, p.c.item_code)).label("task_code"),
            func.coalesce(outbox.c.task_name, pick(w.c.item_name, p.c.item_name)).label("task_name"),
            pick(w.c.satisfaction, p.c.satisfaction).label("satisfaction"),
            pick(w.c.reasons, p.c.reasons).label("reasons"),
            pick(w.c.assess_time, p.c.assess_time).label("assess_time"),
            pick(w.c.staff_name, p.c.staff_name).label("staff_name"),
            d.c.area_code,
            d.c.dept_code,
        )
        .select_from(outbox)
        .outerjoin(
            w,
            (w.c.device_id == outbox.c.device_id)
            & (w.c.log_id == outbox.c.log_id)
            & (w.c.seq == outbox.c.seq),
        )
        .outerjoin(p, (p.c.device_id == outbox.c.device_id) & (p.c.nonce == outbox.c.nonce))
        .outerjoin(d, d.c.id == outbox.c.device_id)
    )
    return query


def _claimed(row) -> Claimed:
    reasons = row.reasons
    rating = UpstreamRating(
        project_no=row.project_no,
        assess_number=row.assess_number,
        task_code=row.task_code,
        task_name=row.task_name,
        channel=row.channel,
        satisfaction=row.satisfaction,
        reasons=None if reasons is None else tuple(c for c in reasons.split(",") if c),
        assessed_at=row.assess_time,
        area_code=row.area_code or None,
        dept_code=row.dept_code or None,
        staff_name=row.staff_name,
    )
    waits = row.channel == WINDOW and row.satisfaction <= 2 and reasons is None
    return Claimed(row.id, row.status, row.attempts, rating, waits)


def _relaxed_commit(conn: Connection) -> None:
    """This transaction's commit need not wait for the disk (see sender.progress_engine for why)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL synchronous_commit TO OFF"))


def claim(conn: Connection, limit: int, now: float, lease_s: float) -> tuple[str, list[Claimed]]:
    """Lease up to ``limit`` due records (oldest first) to a new token; the caller commits."""
    token = secrets.token_hex(16)
    _relaxed_commit(conn)
    # One indexed range per status (status, next_attempt_at, id): no sort of the whole backlog per round.
    candidates: list[tuple[float, int]] = []
    for status in rules.SENDABLE:
        due = (
            select(outbox.c.next_attempt_at, outbox.c.id)
            .where(
                (outbox.c.status == status)
                & (outbox.c.next_attempt_at <= now)
                & or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)
            )
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        found: Any = conn.execute(due)
        candidates += [(float(at), int(i)) for at, i in found]
    ids = [i for _, i in sorted(candidates)[:limit]]
    if not ids:
        return token, []
    # The lease condition again: on SQLite another process may have taken some between our read and write.
    conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(ids) & or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now))
        .values(lease_owner=token, lease_until=now + lease_s)
    )
    rows = conn.execute(_source_query().where(outbox.c.lease_owner == token).order_by(outbox.c.id))
    return token, [_claimed(r) for r in rows]


def settle(
    conn: Connection,
    token: str,
    ids: Sequence[int],
    *,
    status: str,
    attempts_inc: int = 0,
    next_attempt_at: float | None = None,
    last_error: str | None = None,
    message: str | None = None,
) -> int:
    """Record an outcome for records this token leased, and free them; returns how many it still held."""
    if not ids:
        return 0
    _relaxed_commit(conn)
    values: dict[str, Any] = {"status": status, "lease_owner": None, "lease_until": None}
    if attempts_inc:
        values["attempts"] = outbox.c.attempts + attempts_inc
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if status == rules.SENT:
        values.update(sent_at=utc_now_iso(), last_error=None, message=None)
    else:
        values.update(last_error=last_error, message=message)
    result = conn.execute(
        update(outbox).where(outbox.c.id.in_(list(ids)) & (outbox.c.lease_owner == token)).values(**values)
    )
    return result.rowcount


# --- what people see and do ------------------------------------------------------------------------------


class ActionError(Exception):
    """A person's action that cannot apply: ``status`` is the HTTP status it answers (404, 409, 400)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def item(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "projectNo": row.project_no,
        "assessNumber": row.assess_number,
        "status": row.status,
        "attempts": row.attempts,
        "lastError": row.last_error,
        "message": row.message,
        "channel": row.channel,
        "deviceId": row.device_id,
        "assessDay": row.assess_day,
        "sentAt": row.sent_at,
    }


def list_records(conn: Connection, status: str | None, limit: int = 1000, after_id: int = 0) -> list[dict]:
    query = select(outbox).where(outbox.c.id > after_id).order_by(outbox.c.id).limit(limit)
    if status:
        query = query.where(outbox.c.status == status)
    return [item(r) for r in conn.execute(query)]


def counts(conn: Connection) -> dict[str, int]:
    rows: Any = conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status)).all()
    return {s: 0 for s in rules.STATUSES} | {str(s): int(n) for s, n in rows}


def history(conn: Connection, outbox_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(actions).where(actions.c.outbox_id == outbox_id).order_by(actions.c.id))
    return [{"at": r.at, "who": r.who, "action": r.action, **json.loads(r.detail)} for r in rows]


def act(conn: Connection, outbox_id: int, what: str, who: str, **detail: Any) -> dict[str, Any]:
    """A person's action (link, not_reportable, resend, retry), appended with who and when."""
    row = conn.execute(select(outbox).where(outbox.c.id == outbox_id).with_for_update()).first()
    if row is None:
        raise ActionError(404, f"no upstream record {outbox_id}")
    try:
        after = rules.next_status(row.status, what)
    except rules.TransitionError as e:
        raise ActionError(409, str(e)) from None
    values: dict[str, Any] = {"status": after, "next_attempt_at": 0.0, "last_error": None}
    note = detail.get("note")
    if what == "not_reportable":
        if not isinstance(note, str) or not note.strip():
            raise ActionError(400, "not_reportable needs a reason (note)")
        values["last_error"] = f"not reportable: {note.strip()[:500]}"
    if what == "link":
        project_no = detail.get("projectNo")
        if not isinstance(project_no, str) or not project_no.strip() or len(project_no) > 50:
            raise ActionError(400, "link needs projectNo (the case number, at most 50 characters)")
        project_no = project_no.strip()
        if project_no != row.project_no:
            values.update(project_no=project_no, assess_number=_next_assess_number(conn, project_no))
        for field, column in (("taskCode", "task_code"), ("taskName", "task_name")):
            if detail.get(field) is not None:
                if not isinstance(detail[field], str) or not detail[field].strip():
                    raise ActionError(400, f"{field}: text expected")
                values[column] = detail[field].strip()
    conn.execute(update(outbox).where(outbox.c.id == outbox_id).values(**values))
    record = {k: v for k, v in detail.items() if v is not None}
    conn.execute(
        insert(actions).values(
            outbox_id=outbox_id,
            at=utc_now_iso(),
            who=who,
            action=what,
            detail=json.dumps({**record, "from": row.status, "to": after}, ensure_ascii=False),
        )
    )
    return item(conn.execute(select(outbox).where(outbox.c.id == outbox_id)).one())


def retry_failing(conn: Connection, who: str) -> int:
    """Every failing record due now (after the cause was fixed); one appended action per record."""
    ids: list[int] = list(conn.execute(select(outbox.c.id).where(outbox.c.status == rules.FAILING)).scalars())
    for outbox_id in ids:
        act(conn, outbox_id, "retry", who)
    return len(ids)


def reconciliation(
    conn: Connection, first: str | None = None, last: str | None = None
) -> list[dict[str, Any]]:
    """Per day of rating: ratings the hub holds (from the rating tables themselves) against records sent
    and every other status. ``held`` equals the sum of the statuses when every rating has its record."""
    held: dict[str, int] = {}
    for table in (ratings, phone_ratings):
        day = func.substr(table.c.assess_time, 1, 10)
        query = select(day, func.count()).group_by(day)
        if first:
            query = query.where(day >= first)
        if last:
            query = query.where(day <= last)
        counted: Any = conn.execute(query)
        for d, n in counted:
            held[str(d)] = held.get(str(d), 0) + int(n)
    by_status = select(outbox.c.assess_day, outbox.c.status, func.count()).group_by(
        outbox.c.assess_day, outbox.c.status
    )
    if first:
        by_status = by_status.where(outbox.c.assess_day >= first)
    if last:
        by_status = by_status.where(outbox.c.assess_day <= last)
    days: dict[str, dict[str, Any]] = {}
    for d in held:
        days[d] = {"day": d, "held": held[d], **{s: 0 for s in rules.STATUSES}}
    for d, status, n in conn.execute(by_status):
        key = str(d)
        days.setdefault(key, {"day": key, "held": 0, **{s: 0 for s in rules.STATUSES}})[str(status)] = n
    for row in days.values():
        row["recorded"] = sum(row[s] for s in rules.STATUSES)
        row["agrees"] = row["recorded"] == row["held"]
    return [days[d] for d in sorted(days)]


def left_to_send(conn: Connection, now: float) -> int:
    """Pending or failing records that no live sender holds (another process's lease is its job)."""
    return conn.execute(
        select(func.count()).where(
            outbox.c.status.in_(rules.SENDABLE)
            & or_(outbox.c.lease_until.is_(None), outbox.c.lease_until < now)
        )
    ).scalar_one()
