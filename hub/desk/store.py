"""The desk's storage over the hub's engine: users and sections, devices' sections, the 差评 items, the
hash-chained action record with its contact reveals, and the check of that chain.

Items are added by ``add_window_items`` / ``add_phone_item`` inside the transaction that stores the
ratings (hub.storage calls them), so the 台账 never misses a 差评 the hub holds. Actions are appended
with the next seq of one desk-wide chain; two writers racing for a seq collide on the primary key and
the loser retries on the new head, so the chain never forks.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import String, and_, case, cast, delete, exists, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from core.domain import is_bad
from core.events import ZERO_HASH, canonical_json

from ..schema import devices, phone_ratings, ratings
from . import workflow as wf
from .calendar import CalendarGap, WorkCalendar, days_left, deadline
from .roles import Principal, check_user_fields
from .tables import actions, device_sections, item_facts, item_status, items, sections, users

CONTACT = "contact"  # the action name of a phone-number reveal in the record
_HASHER = PasswordHasher()  # Argon2id with the library's current defaults
MIN_PASSWORD_CHARS = 10
_APPEND_RETRIES = 20


class DeskError(Exception):
    """An operator's mistake (unknown section, user exists…); the message says which."""


class NotFound(Exception):
    pass


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def local_today() -> date:
    return datetime.now().astimezone().date()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def action_hash(row: Mapping[str, Any]) -> str:
    """The hash of one action record row (everything but its own hash), over canonical JSON."""
    body = {k: row[k] for k in ("seq", "item_id", "at", "by_user", "role", "action", "status", "prev_hash")}
    body["payload"] = json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]
    return hashlib.sha256(canonical_json(body)).hexdigest()


# --- items, added with the ratings ----------------------------------------------------------------


def section_of(conn, device_id: str) -> str | None:
    return conn.execute(
        select(device_sections.c.dept)
        .where(device_sections.c.device_id == device_id)
        .order_by(device_sections.c.id.desc())
        .limit(1)
    ).scalar()


def add_window_items(conn, device_id: str, log_id: str, rows: Iterable[Mapping[str, Any]], now: str) -> None:
    """An item for each 差评 among ``rows`` (derived rating rows of one log); inside the caller's
    transaction."""
    rows = list(rows)
    if not any(is_bad(r["satisfaction"]) for r in rows):
        return  # no 差评: no section to read
    new_items = window_item_rows(device_id, log_id, rows, section_of(conn, device_id), now)
    conn.execute(insert(items), new_items)
    fold_item_facts(
        conn,
        (items.c.device_id == device_id)
        & (items.c.log_id == log_id)
        & items.c.seq.in_([r["seq"] for r in new_items]),
    )


def window_item_rows(
    device_id: str, log_id: str, rows: Iterable[Mapping[str, Any]], dept: str | None, now: str
) -> list[dict[str, Any]]:
    """The desk_items rows of the 差评 among ``rows`` (derived rating rows of one log) arriving ``now``
    from a device in section ``dept`` (``section_of``)."""
    received = _local_date(now)
    return [
        {
            "device_id": device_id,
            "log_id": log_id,
            "seq": r["seq"],
            "nonce": None,
            "dept": dept,
            "satisfaction": r["satisfaction"],
            "assess_time": r["assess_time"],
            "received": received,
            "received_at": now,
        }
        for r in rows
        if is_bad(r["satisfaction"])
    ]


def add_phone_item(conn, row: Mapping[str, Any]) -> None:
    """The item of a phone rating, if it is a 差评; inside the caller's transaction."""
    if not is_bad(row["satisfaction"]):
        return
    conn.execute(
        insert(items).values(
            device_id=row["device_id"],
            log_id=None,
            seq=None,
            nonce=row["nonce"],
            dept=section_of(conn, row["device_id"]),
            satisfaction=row["satisfaction"],
            assess_time=row["assess_time"],
            received=_local_date(row["at"]),
            received_at=row["at"],
        )
    )
    fold_item_facts(conn, (items.c.device_id == row["device_id"]) & (items.c.nonce == row["nonce"]))


def withdraw_window_items(conn, device_id: str, log_id: str, seqs: Iterable[int], now: str) -> list[int]:
    """The items of these window 差评, corrected to a good level by the rater, off the open list: a
    ``withdraw`` appended to each one's record (the item and its history stay). Items finished already
    (办结, 不属实, withdrawn) are left as they are. Inside the caller's transaction (the ingest's); returns
    the ids of the items withdrawn."""
    wanted = sorted(set(seqs))
    if not wanted:
        return []
    found = conn.execute(
        select(items.c.id).where(
            (items.c.device_id == device_id) & (items.c.log_id == log_id) & items.c.seq.in_(wanted)
        )
    ).scalars()
    withdrawn = []
    for item_id in sorted(found):
        for _ in range(_APPEND_RETRIES):
            # Checked again on every try: a desk user's action appended meanwhile (办结, 不属实) may have
            # finished the item, and a withdrawal after it is a step the workflow refuses. The head is read
            # first: an action committed after it takes the seq this one would, and this one tries again.
            head = _head(conn)
            history = conn.execute(
                select(actions.c.action, actions.c.role, actions.c.payload)
                .where((actions.c.item_id == item_id) & (actions.c.action != CONTACT))
                .order_by(actions.c.seq)
            ).all()
            state = wf.replay((a, role, json.loads(p)) for a, role, p in history)
            try:
                after = wf.step(state, wf.WITHDRAW, wf.SYSTEM, {})
            except wf.Refused:
                break
            note = {"note": "评价人在评价器上改为好评"}
            if _try_append_in(
                conn, item_id, wf.SYSTEM_USER, wf.SYSTEM, wf.WITHDRAW, note, after.status, now, head
            ):
                withdrawn.append(item_id)
                break
        else:
            raise RuntimeError("the desk record is too busy to append to")
    return withdrawn


_UNREAD: Any = object()


def _append_in(conn, item_id: int, user: str, role: str, action: str, payload, status: str, now: str) -> None:
    """One row at the head of the desk's chain, in the caller's transaction. A desk user appending at
    the same moment takes the same seq: the loser of that race (a savepoint here) reads the new head and
    tries again, so neither write is lost and the chain never forks. For a caller whose step does not
    depend on the item's state (tests building a record); one that does checks again: ``_try_append_in``."""
    for _ in range(_APPEND_RETRIES):
        if _try_append_in(conn, item_id, user, role, action, payload, status, now):
            return
    raise RuntimeError("the desk record is too busy to append to")


def _head(conn) -> Any:
    """(seq, hash) of the desk chain's newest row, or None."""
    return conn.execute(select(actions.c.seq, actions.c.hash).order_by(actions.c.seq.desc()).limit(1)).first()


def _try_append_in(
    conn, item_id: int, user: str, role: str, action: str, payload, status: str, now: str, head: Any = _UNREAD
) -> bool:
    """One row after ``head`` (read now if not given), in the caller's transaction; False, nothing
    written, when another writer took that seq first (the caller checks its step again)."""
    if head is _UNREAD:
        head = _head(conn)
    seq, prev = (head.seq + 1, head.hash) if head else (1, ZERO_HASH)
    row = {
        "seq": seq,
        "item_id": item_id,
        "at": now,
        "by_user": user,
        "role": role,
        "action": action,
        "payload": canonical_json(payload).decode("utf-8"),
        "status": status,
        "prev_hash": prev,
    }
    row["hash"] = action_hash(row)
    try:
        with conn.begin_nested():
            conn.execute(insert(actions).values(**row))
            _cache_status(conn, item_id, seq, status)
        return True
    except IntegrityError:
        return False


def _cache_status(conn, item_id: int, seq: int, status: str) -> None:
    """Keep ``desk_item_status`` (the item's newest status, a cache of the record) with each action
    appended, by every path that appends one; ``kiosk hub verify`` compares it with the record."""
    cached = conn.execute(
        update(item_status).where(item_status.c.item_id == item_id).values(seq=seq, status=status)
    )
    if cached.rowcount == 0:
        conn.execute(insert(item_status).values(item_id=item_id, seq=seq, status=status))
    fold_item_facts(conn, items.c.id == item_id)


# --- what the figures count of each item (``desk_item_facts``) -------------------------------------


def item_facts_query(postgres: bool, where=None):
    """Each item's facts as the figures count them (the columns of ``desk_item_facts``), computed from
    the item, its rating and its action record; ``where``: a condition on ``items`` (None: every item)."""
    if postgres:
        reached = cast(actions.c.payload, _jsonb())["reached"] == cast(literal("true"), _jsonb())
    else:
        reached = func.json_type(actions.c.payload, "$.reached") == "true"
    q = select(
        items.c.id.label("item_id"),
        func.substr(items.c.assess_time, 1, 10).label("day"),
        items.c.device_id,
        func.coalesce(ratings.c.staff_no, phone_ratings.c.staff_no, literal("")).label("staff_no"),
        func.coalesce(ratings.c.item_code, phone_ratings.c.item_code, literal("")).label("item_code"),
        items.c.received,
        func.coalesce(item_status.c.status, literal(wf.OPEN)).label("status"),
        case(
            (func.coalesce(ratings.c.contact_sealed, phone_ratings.c.contact_sealed).is_not(None), 1),
            else_=0,
        ).label("real_name"),
        case(
            (
                exists().where(
                    (actions.c.item_id == items.c.id) & (actions.c.action == wf.CALLBACK) & reached
                ),
                1,
            ),
            else_=0,
        ).label("called_back"),
        select(_utc_text(actions.c.at, postgres))
        .where((actions.c.item_id == items.c.id) & (actions.c.action == wf.CLOSE))
        .order_by(actions.c.seq)
        .limit(1)
        .correlate(items)
        .scalar_subquery()
        .label("closed_at"),
    ).select_from(items_with_their_ratings().outerjoin(item_status, item_status.c.item_id == items.c.id))
    return q if where is None else q.where(where)


def fold_item_facts(conn, where) -> None:
    """Rewrite the facts of the items ``where`` selects from the record, in the caller's transaction."""
    postgres = conn.engine.dialect.name == "postgresql"
    ids = select(items.c.id).where(where)
    if postgres:  # one writer of an item's facts at a time; the next reads what the first committed
        conn.execute(ids.order_by(items.c.id).with_for_update())
    conn.execute(delete(item_facts).where(item_facts.c.item_id.in_(ids.scalar_subquery())))
    conn.execute(insert_item_facts(postgres, where))


def insert_item_facts(postgres: bool, where):
    """The INSERT of the facts of the items ``where`` selects, computed from the record (for items that
    have none yet: ``fold_item_facts`` deletes the old ones first; the PostgreSQL upload path runs it for
    the items it has just inserted)."""
    return insert(item_facts).from_select(list(_FACT_COLUMNS), item_facts_query(postgres, where))


def check_item_facts(conn) -> list[str]:
    """Differences between ``desk_item_facts`` and the facts recomputed from the record; empty when they
    agree (`kiosk hub stats --verify`)."""
    fresh = {
        r.item_id: tuple(r) for r in conn.execute(item_facts_query(conn.engine.dialect.name == "postgresql"))
    }
    stored = {r.item_id: tuple(r) for r in conn.execute(select(*[item_facts.c[c] for c in _FACT_COLUMNS]))}
    problems = []
    for item_id in sorted(set(fresh) | set(stored)):
        want, have = fresh.get(item_id), stored.get(item_id)
        if want != have:
            problems.append(
                f"desk item {item_id}: its figures' facts are stored as {_facts_text(have)} but the record "
                f"says {_facts_text(want)}"
            )
    return problems


_FACT_COLUMNS = (
    "item_id",
    "day",
    "device_id",
    "staff_no",
    "item_code",
    "received",
    "status",
    "real_name",
    "called_back",
    "closed_at",
)


def _facts_text(row) -> str:
    if row is None:
        return "nothing"
    return ", ".join(f"{c}={v}" for c, v in zip(_FACT_COLUMNS[1:], row[1:], strict=True))


def _utc_text(at, postgres: bool):
    """An ISO instant as UTC text of one format, ``YYYY-MM-DDTHH:MM:SS+00:00`` (whole seconds): what
    ``datetime.isoformat(timespec="seconds")`` of a UTC time gives, so instants compare as text."""
    if postgres:
        return (
            func.to_char(
                func.timezone("UTC", cast(at, _timestamptz())), 'YYYY-MM-DD"T"HH24:MI:SS', type_=String()
            )
            + "+00:00"
        )
    return func.strftime("%Y-%m-%dT%H:%M:%S+00:00", at)


def _timestamptz():
    from sqlalchemy.dialects.postgresql import TIMESTAMP

    return TIMESTAMP(timezone=True)


def _jsonb():
    from sqlalchemy.dialects.postgresql import JSONB

    return JSONB


def _local_date(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().date().isoformat()


# --- the desk --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemFilter:
    status: str | None = None
    dept: str | None = None
    overdue: bool | None = None
    first: str | None = None  # received on or after, yyyy-MM-dd
    last: str | None = None  # received on or before


def items_with_their_ratings():
    """The 差评 items joined to the rating each came from: a window rating (device, log, seq) or a phone
    rating (device, nonce); read a rating's column of either with ``coalesce``."""
    return items.outerjoin(
        ratings,
        and_(
            ratings.c.device_id == items.c.device_id,
            ratings.c.log_id == items.c.log_id,
            ratings.c.seq == items.c.seq,
        ),
    ).outerjoin(
        phone_ratings,
        and_(phone_ratings.c.device_id == items.c.device_id, phone_ratings.c.nonce == items.c.nonce),
    )


class DeskStore:
    """The desk's data access; ``engine`` is the hub store's."""

    def __init__(self, engine, calendar: WorkCalendar, working_days: int = 5, today=local_today):
        self.engine = engine
        self.calendar = calendar
        self.working_days = working_days
        self.today = today

    # --- sections and devices --------------------------------------------------------------------

    def add_section(self, code: str, name: str) -> bool:
        """Add a section, or rename it; True if it is new."""
        with self.engine.begin() as conn:
            if conn.execute(select(sections.c.code).where(sections.c.code == code)).first():
                conn.execute(update(sections).where(sections.c.code == code).values(name=name))
                return False
            conn.execute(insert(sections).values(code=code, name=name, created_at=now_utc()))
            return True

    def sections(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(select(sections.c.code, sections.c.name).order_by(sections.c.code)).all()
            )

    def set_device_section(self, device_id: str, dept: str) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(select(devices.c.id).where(devices.c.id == device_id)).first():
                raise DeskError(f"device {device_id} is not registered")
            self._require_section(conn, dept)
            conn.execute(insert(device_sections).values(device_id=device_id, dept=dept, at=now_utc()))

    def section_name(self, device_id: str) -> str | None:
        """The name of the device's current section, if it has one (the phone page names it)."""
        with self.engine.connect() as conn:
            code = section_of(conn, device_id)
            if code is None:
                return None
            return conn.execute(select(sections.c.name).where(sections.c.code == code)).scalar()

    def device_sections(self) -> dict[str, str | None]:
        """Every registered device and its current section."""
        with self.engine.connect() as conn:
            ids = conn.execute(select(devices.c.id).order_by(devices.c.id)).scalars().all()
            return {d: section_of(conn, d) for d in ids}

    @staticmethod
    def _require_section(conn, dept: str) -> None:
        if not conn.execute(select(sections.c.code).where(sections.c.code == dept)).first():
            raise DeskError(f"section {dept} does not exist: kiosk hub dept add {dept} NAME")

    # --- users -----------------------------------------------------------------------------------

    def add_user(self, name: str, role: str, dept: str | None) -> str:
        """Create a user; returns a one-time password that must be changed at the first login."""
        problem = check_user_fields(role, dept)
        if problem:
            raise DeskError(problem)
        password = secrets.token_urlsafe(12)
        with self.engine.begin() as conn:
            if dept:
                self._require_section(conn, dept)
            if conn.execute(select(users.c.name).where(users.c.name == name)).first():
                raise DeskError(f"user {name} exists")
            conn.execute(
                insert(users).values(
                    name=name,
                    role=role,
                    dept=dept,
                    password_hash=_HASHER.hash(password),
                    must_change=1,
                    token_hash=None,
                    disabled=0,
                    created_at=now_utc(),
                )
            )
        return password

    def users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    users.c.name,
                    users.c.role,
                    users.c.dept,
                    users.c.disabled,
                    users.c.must_change,
                    (users.c.token_hash.is_not(None)).label("has_token"),
                    users.c.created_at,
                ).order_by(users.c.name)
            ).mappings()
            return [dict(r) for r in rows]

    def disable_user(self, name: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(users).where(users.c.name == name).values(disabled=1, token_hash=None))
        if done.rowcount == 0:
            raise DeskError(f"no user {name}")

    def new_token(self, name: str) -> str:
        """A new API token for ``name`` (replacing any earlier one); only its hash is stored."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            done = conn.execute(
                update(users)
                .where((users.c.name == name) & (users.c.disabled == 0))
                .values(token_hash=token_digest(token))
            )
        if done.rowcount == 0:
            raise DeskError(f"no enabled user {name}")
        return token

    def principal_for_token(self, token: str) -> Principal | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users.c.name, users.c.role, users.c.dept).where(
                    (users.c.token_hash == token_digest(token)) & (users.c.disabled == 0)
                )
            ).first()
        return Principal(row.name, row.role, row.dept) if row else None

    def principal(self, name: str) -> Principal | None:
        """An enabled user by name."""
        found = self.session_principal(name)
        return found[0] if found else None

    def session_principal(self, name: str) -> tuple[Principal, str] | None:
        """An enabled user by name and their credential (the password hash, "" without one), which a
        console session must have been opened with."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users.c.name, users.c.role, users.c.dept, users.c.password_hash).where(
                    (users.c.name == name) & (users.c.disabled == 0)
                )
            ).first()
        return (Principal(row.name, row.role, row.dept), row.password_hash or "") if row else None

    def check_password(self, name: str, password: str) -> tuple[Principal, bool, str] | None:
        """(principal, must change password, the hash it was checked against) when the password is
        right; None otherwise. A console session is bound to that hash (``session_principal``), not to
        one read again later: a password changed in between would otherwise be the one the session
        carries, and the old password would open a session outliving its change."""
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where((users.c.name == name) & (users.c.disabled == 0))).first()
        if row is None or row.password_hash is None:
            _HASHER.hash(password)  # the same time whether the name exists or not
            return None
        try:
            _HASHER.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return Principal(row.name, row.role, row.dept), bool(row.must_change), str(row.password_hash)

    def set_password(self, name: str, password: str) -> str:
        """Set ``name``'s password; returns its new hash (what the changer's own session is bound to)."""
        if len(password) < MIN_PASSWORD_CHARS:
            raise DeskError(f"a password has at least {MIN_PASSWORD_CHARS} characters")
        hashed = _HASHER.hash(password)
        with self.engine.begin() as conn:
            conn.execute(
                update(users).where(users.c.name == name).values(password_hash=hashed, must_change=0)
            )
        return hashed

    # --- items -----------------------------------------------------------------------------------

    @staticmethod
    def _status_column():
        """The item's status: its newest action's (``desk_item_status``), open without one."""
        return func.coalesce(item_status.c.status, literal(wf.OPEN))

    def _item_query(self):
        status = self._status_column().label("status")
        return (
            select(
                items,
                status,
                func.coalesce(ratings.c.window, phone_ratings.c.window).label("window"),
                func.coalesce(ratings.c.staff_no, phone_ratings.c.staff_no).label("staff_no"),
                func.coalesce(ratings.c.staff_name, phone_ratings.c.staff_name).label("staff_name"),
                func.coalesce(ratings.c.case_no, phone_ratings.c.case_no).label("case_no"),
                func.coalesce(ratings.c.item_code, phone_ratings.c.item_code).label("item_code"),
                func.coalesce(ratings.c.item_name, phone_ratings.c.item_name).label("item_name"),
                func.coalesce(ratings.c.ticket_no, phone_ratings.c.ticket_no).label("ticket_no"),
                func.coalesce(ratings.c.reasons, phone_ratings.c.reasons).label("reasons"),
                func.coalesce(ratings.c.contact_sealed, phone_ratings.c.contact_sealed).label(
                    "contact_sealed"
                ),
                # The level as the rater left it (a correction at the kiosk changes it); items keep
                # the level that arrived first.
                func.coalesce(ratings.c.satisfaction, items.c.satisfaction).label("level_now"),
                ratings.c.corrected_from,
            ).select_from(
                items_with_their_ratings().outerjoin(item_status, item_status.c.item_id == items.c.id)
            )
        ), status

    @staticmethod
    def _status_condition(wanted: str):
        """Items whose status is ``wanted``: one index look-up each way, no join needed to count them."""
        cached = item_status.alias("cached")  # not the page query's join of the same table
        if wanted == wf.OPEN:
            return ~(
                select(cached.c.item_id)
                .where((cached.c.item_id == items.c.id) & (cached.c.status != wf.OPEN))
                .exists()
            )
        return items.c.id.in_(select(cached.c.item_id).where(cached.c.status == wanted))

    def overdue_cutoff(self) -> str:
        """Items received before this day (yyyy-MM-dd) and not finished are overdue. CalendarGap if the
        calendar does not reach back far enough."""
        return self.calendar.first_received_due_on_or_after(self.today(), self.working_days).isoformat()

    def list_items(
        self, who: Principal, f: ItemFilter, limit: int = 50, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the 台账 the user may see (newest first) and the number of matching items."""
        query, status = self._item_query()
        conditions = []
        scope = who.item_scope()
        if scope is not None:
            conditions.append(items.c.dept == scope)
        if f.dept is not None:
            conditions.append(items.c.dept == f.dept)
        if f.status is not None:
            conditions.append(self._status_condition(f.status))
        if f.first:
            conditions.append(items.c.received >= f.first)
        if f.last:
            conditions.append(items.c.received <= f.last)
        if f.overdue is not None:
            cutoff = self.overdue_cutoff()
            # Closed and not_adopted are final: an item is finished when any of its rows says so. EXISTS,
            # not IN: PostgreSQL plans NOT IN over a set larger than work_mem as a scan of the set per
            # item (minutes at 400,000 items), NOT EXISTS as one anti-join (benchmarks/scale.py).
            finished = (
                select(actions.c.item_id)
                .where((actions.c.item_id == items.c.id) & actions.c.status.in_(sorted(wf.FINISHED)))
                .exists()
            )
            if f.overdue:
                conditions.append((items.c.received < cutoff) & ~finished)
            else:
                conditions.append((items.c.received >= cutoff) | finished)
        with self.engine.connect() as conn:
            # Counted on the items alone: the rating joins add no rows and cost a lookup each.
            total = conn.execute(select(func.count()).select_from(items).where(*conditions)).scalar()
            rows = conn.execute(
                query.where(*conditions).order_by(items.c.id.desc()).limit(limit).offset(offset)
            )
            page = [self._view(dict(r)) for r in rows.mappings()]
        return page, total

    def item(self, who: Principal, item_id: int) -> dict[str, Any]:
        """One item with its history; NotFound, or PermissionError when out of the user's scope."""
        query, _ = self._item_query()
        with self.engine.connect() as conn:
            row = conn.execute(query.where(items.c.id == item_id)).mappings().first()
            if row is None:
                raise NotFound(item_id)
            if not who.may_see_item(row["dept"]):
                raise PermissionError(item_id)
            history = self._history(conn, item_id)
        view = self._view(dict(row))
        view["history"] = history
        view["state"] = wf.replay(
            (h["action"], h["role"], h["payload"]) for h in history if h["action"] != CONTACT
        )
        return view

    def histories(self, item_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        """The histories of several items (a page of the 台账) in one query."""
        found: dict[int, list[dict[str, Any]]] = {i: [] for i in item_ids}
        if not item_ids:
            return found
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(actions).where(actions.c.item_id.in_(item_ids)).order_by(actions.c.seq)
            )
            for r in rows:
                found[r.item_id].append(_history_row(r))
        return found

    @staticmethod
    def _history(conn, item_id: int) -> list[dict[str, Any]]:
        rows = conn.execute(select(actions).where(actions.c.item_id == item_id).order_by(actions.c.seq))
        return [_history_row(r) for r in rows]

    def _view(self, row: dict[str, Any]) -> dict[str, Any]:
        """Deadline, days left and overdue for an item row (never the sealed contact)."""
        sealed = row.pop("contact_sealed", None)
        row["has_contact"] = sealed is not None
        row["satisfaction"] = row.pop("level_now", None) or row["satisfaction"]
        received = date.fromisoformat(row["received"])
        row.update(deadline=None, days_left=None, overdue=False, calendar_gap=None)
        try:
            due = deadline(self.calendar, received, self.working_days)
            row["deadline"] = due.isoformat()
            row["overdue"] = row["status"] not in wf.FINISHED and self.today() > due
            row["days_left"] = days_left(self.calendar, self.today(), due)
        except CalendarGap as e:
            row["calendar_gap"] = str(e)  # shown as an alarm; the days are not guessed
        row["reasons"] = [c for c in (row["reasons"] or "").split(",") if c]
        row["channel"] = "phone" if row["nonce"] else "window"
        return row

    # --- actions ---------------------------------------------------------------------------------

    def act(self, who: Principal, item_id: int, action: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Append ``action`` to the item's record after the workflow allows it; returns the item.
        Refused (403/409/422), NotFound or PermissionError otherwise."""
        payload = wf.check_input(action, fields)
        for _ in range(_APPEND_RETRIES):
            current = self.item(who, item_id)
            state = wf.step(current["state"], action, who.role, payload)
            if self._append(item_id, who, action, payload, state.status, current["history"]):
                return self.item(who, item_id)
        raise RuntimeError("the desk record is too busy to append to")

    def reveal_contact(self, who: Principal, item_id: int, opener) -> str | None:
        """The rater's phone number, recorded as a reveal first; PermissionError out of scope."""
        current = self.item(who, item_id)
        if not who.may_reveal_contact(current["dept"]):
            raise PermissionError(item_id)
        with self.engine.connect() as conn:
            sealed = conn.execute(
                select(func.coalesce(ratings.c.contact_sealed, phone_ratings.c.contact_sealed))
                .select_from(items)
                .outerjoin(
                    ratings,
                    and_(
                        ratings.c.device_id == items.c.device_id,
                        ratings.c.log_id == items.c.log_id,
                        ratings.c.seq == items.c.seq,
                    ),
                )
                .outerjoin(
                    phone_ratings,
                    and_(
                        phone_ratings.c.device_id == items.c.device_id, phone_ratings.c.nonce == items.c.nonce
                    ),
                )
                .where(items.c.id == item_id)
            ).scalar()
        payload = {"had_contact": sealed is not None}
        for _ in range(_APPEND_RETRIES):
            current = self.item(who, item_id)
            if self._append(item_id, who, CONTACT, payload, current["status"], current["history"]):
                return opener(sealed) if sealed is not None else None
        raise RuntimeError("the desk record is too busy to append to")

    def _append(self, item_id, who: Principal, action: str, payload, status: str, seen_history) -> bool:
        """Append one row at the head of the chain; False if another writer got there first (the
        caller re-reads and re-checks the item)."""
        try:
            with self.engine.begin() as conn:
                head = conn.execute(
                    select(actions.c.seq, actions.c.hash).order_by(actions.c.seq.desc()).limit(1)
                ).first()
                # The item changed since it was checked: re-check against the new history.
                last_seen = seen_history[-1]["seq"] if seen_history else None
                last_now = conn.execute(
                    select(func.max(actions.c.seq)).where(actions.c.item_id == item_id)
                ).scalar()
                if last_now != last_seen:
                    return False
                seq, prev = (head.seq + 1, head.hash) if head else (1, ZERO_HASH)
                row = {
                    "seq": seq,
                    "item_id": item_id,
                    "at": now_utc(),
                    "by_user": who.name,
                    "role": who.role,
                    "action": action,
                    "payload": canonical_json(payload).decode("utf-8"),
                    "status": status,
                    "prev_hash": prev,
                }
                row["hash"] = action_hash(row)
                conn.execute(insert(actions).values(**row))
                _cache_status(conn, item_id, seq, status)
            return True
        except IntegrityError:
            return False

    def audit(self, limit: int = 500) -> list[dict[str, Any]]:
        """Every contact reveal, newest first: who, when, which item."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(actions.c.seq, actions.c.at, actions.c.by_user, actions.c.role, actions.c.item_id)
                .where(actions.c.action == CONTACT)
                .order_by(actions.c.seq.desc())
                .limit(limit)
            )
            return [
                {"seq": r.seq, "at": r.at, "user": r.by_user, "role": r.role, "item": r.item_id} for r in rows
            ]

    def head(self) -> tuple[int, str]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(actions.c.seq, actions.c.hash).order_by(actions.c.seq.desc()).limit(1)
            ).first()
        return (row.seq, row.hash) if row else (0, ZERO_HASH)


def _history_row(r) -> dict[str, Any]:
    return {
        "seq": r.seq,
        "at": r.at,
        "user": r.by_user,
        "role": r.role,
        "action": r.action,
        "payload": json.loads(r.payload),
        "status": r.status,
    }


def check_desk_chain(store) -> str | None:
    """None when the desk's action record is one unbroken chain; else what is wrong, naming the seq.
    ``store``: a HubStore or its engine (for `kiosk hub verify`'s registry of checks)."""
    engine = getattr(store, "engine", store)
    expected, prev = 1, ZERO_HASH
    newest: dict[int, tuple[int, str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(actions).order_by(actions.c.seq)).mappings():
            if row["seq"] != expected:
                return f"desk record: seq {expected} missing (next is {row['seq']})"
            if row["prev_hash"] != prev:
                return f"desk record: seq {row['seq']} does not link to seq {expected - 1}"
            if action_hash(row) != row["hash"]:
                return f"desk record: seq {row['seq']} was changed after it was written"
            expected, prev = expected + 1, row["hash"]
            newest[row["item_id"]] = (row["seq"], row["status"])
        cached = {r.item_id: (r.seq, r.status) for r in conn.execute(select(item_status))}
    for item_id in sorted(set(newest) | set(cached)):
        if newest.get(item_id) != cached.get(item_id):
            return (
                f"desk record: item {item_id}'s status is cached as {cached.get(item_id)} but its newest "
                f"action says {newest.get(item_id)} (seq, status)"
            )
    return None
