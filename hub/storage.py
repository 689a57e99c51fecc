"""The hub's storage: devices, the kiosks' event logs, derived ratings, phone ratings, rosters, photos, and
the private key that opens sealed contacts, which is kept in its own 0600 file, never in the database.

SQLAlchemy Core over any URL (SQLite in ``--data DIR`` by default, PostgreSQL by ``--db URL``), the same
statements for both. Events are keyed on (device, log, seq) and stored once; a batch is checked link by
link with ``core.events.chain_error`` and its valid prefix is stored in one transaction with the
ratings derived from it, so the derived table never disagrees with the log. Phone ratings from the QR
code page have their own table; a case has at most one phone rating, and none once its terminal rating
is at the hub (一次一评).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nacl.public import PrivateKey
from sqlalchemy import (
    Engine,
    bindparam,
    create_engine,
    event,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from core.events import ZERO_HASH, canonical_json, chain_error, event_hash

from . import (
    fleet_schema,  # noqa: F401  (the fleet's tables join the metadata)
    migrate,
    signature_policy,
)
from .corrections import apply_corrections
from .derived import chain_phone_row, event_row, opened_case_row, opened_cases
from .desk.store import add_phone_item, add_window_items, fold_item_facts
from .desk.tables import items
from .keys import KeyFileError, create_key_file, read_key_file
from .ratings import detail_values, rating_row
from .schema import (
    ALL_DEVICES,
    devices,
    events,
    logs,
    meta,
    phone_ratings,
    photos,
    ratings,
    roster_staff,
    rosters,
)
from .secret_cache import SecretCache
from .upstream import outbox as upstream_outbox

if TYPE_CHECKING:
    from .ingest_pg import PgIngest

log = logging.getLogger("hub")

PRIVATE_KEY_META = "contact_private_key"  # where hubs before the key file kept it; moved out on start
# The contact key's public half (hex; not secret), recorded at first use: a host whose key file is missing
# or holds another key is refused rather than given a new key that opens none of the stored numbers.
PUBLIC_KEY_META = "contact_public_key"
DATABASE_FILE = "hub.db"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def database_url(data: str | Path | None, db: str | None) -> str:
    """``--db URL`` as given, else the SQLite file in ``--data DIR`` (default ./hub-data)."""
    if db:
        return db
    folder = Path(data or "hub-data").absolute()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds every device secret
    return f"sqlite:///{folder / DATABASE_FILE}"


def _private_sqlite_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask, 0644 under 022), or make
    an existing one 0600; SQLite gives its -wal and -shm files the database file's mode. A file that
    cannot be opened is left to SQLite, which says why when the hub connects."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
            log.warning("%s was readable by others: made 0600 (it holds every device secret)", path)
    finally:
        os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # an acked event survives power loss
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# Connections each hub process keeps open to PostgreSQL, and how many more it may open at a busy moment
# (closed again when returned). Uploads (16 at once, MAX_INGESTS_IN_FLIGHT), their secret reads, heartbeats
# and phone ratings share them: a pool smaller than that opened and closed a PostgreSQL backend for most
# requests under load. The uploads' own path keeps up to hub.ingest_pg.KEEP_CONNECTIONS more. PostgreSQL's
# max_connections must allow processes × (POOL_SIZE + POOL_OVERFLOW + KEEP_CONNECTIONS).
PG_POOL_SIZE = 20
PG_POOL_OVERFLOW = 10


def _pool_options(url: str) -> dict[str, int]:
    return (
        {"pool_size": PG_POOL_SIZE, "max_overflow": PG_POOL_OVERFLOW} if url.startswith("postgresql") else {}
    )


@dataclass(frozen=True)
class IngestResult:
    """What the hub holds of one log after a batch: ``acked_seq``, and why it stopped if it did."""

    acked_seq: int
    stored: int
    conflict: str | None = None  # "gap", "fork" or "bad_hash"
    conflict_seq: int | None = None  # the seq of the event that caused it

    @property
    def expected_seq(self) -> int:
        return self.acked_seq + 1


@dataclass(frozen=True)
class StaffEntry:
    card: str
    staff_no: str
    name: str
    title: str
    photo: bytes | None
    photo_media_type: str | None


@dataclass(frozen=True)
class Roster:
    version: str
    staff: list[dict[str, Any]]  # card, staff_no, name, title, photo_sha256


EMPTY_ROSTER_VERSION = "empty"


class HubStore:
    """The hub's database. Thread-safe; one instance per process."""

    def __init__(self, url: str, key_file: Path | None = None, fast_ingest: bool = True):
        self.url = url
        self.key_file = key_file
        self.engine: Engine = create_engine(url, pool_pre_ping=True, **_pool_options(url))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
            database = self.engine.url.database
            if database and database != ":memory:" and not database.startswith("file:"):
                _private_sqlite_file(Path(database))
        self.created = not inspect(self.engine).has_table("devices")
        migrate.upgrade(self.engine)
        if self.created:
            # Loud: a hub started from another folder than usual gets a new, empty registry, refuses every
            # device, and `kiosk hub device add` there registers them in the wrong database.
            log.warning(
                "NEW EMPTY DATABASE created at %s: no devices are registered in it. If this hub ran before, "
                "it was started with another --data folder or --db URL (the default ./hub-data is relative "
                "to the current folder); stop it and start it on the usual one.",
                self.location,
            )
        # One writer of phone ratings at a time in this process (their chain takes one link at a time), and
        # on SQLite, which has one writer anyway, of logs too, so 一次一评 is decided in order. Uploads to
        # PostgreSQL run side by side (each in a threadpool thread): the log's row lock serialises the
        # uploads of one log, in this process as across processes.
        self._ingest_lock = threading.Lock()
        self._serial_ingest = self.engine.dialect.name != "postgresql"
        self._key_lock = threading.Lock()
        self._private_key: PrivateKey | None = None
        self.secret_cache = SecretCache(self._read_device_secret, load_all=self._read_device_secrets)
        # PostgreSQL: what a live device sends is stored in two round trips (hub/ingest_pg.py), anything
        # else by the general path below; ``fast_ingest=False`` keeps every upload on the general path.
        self._fast: PgIngest | None = None
        if fast_ingest and not self._serial_ingest:
            from .ingest_pg import PgIngest  # psycopg: installed with the postgres extra only

            self._fast = PgIngest(self.engine)

    @property
    def location(self) -> str:
        """Where this store lives, for messages: the database URL without its password."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        if self._fast is not None:
            self._fast.close()
        self.engine.dispose()

    # --- keypair for sealed contacts -----------------------------------------------------------

    @property
    def private_key(self) -> PrivateKey:
        """The contact key, from ``key_file`` (made on first use, or moved there out of the database)."""
        with self._key_lock:
            if self._private_key is None:
                self._private_key = self._load_key()
            return self._private_key

    def _load_key(self) -> PrivateKey:
        if self.key_file is None:
            raise KeyFileError("this hub store has no key file for contacts")
        with self.engine.connect() as conn:
            legacy = conn.execute(select(meta.c.value).where(meta.c.key == PRIVATE_KEY_META)).scalar()
            recorded = conn.execute(select(meta.c.value).where(meta.c.key == PUBLIC_KEY_META)).scalar()
        key = read_key_file(self.key_file)
        if key is None and recorded is not None and legacy is None:
            raise KeyFileError(
                f"{self.key_file}: no contact key file, and this database's numbers are sealed to the key "
                f"whose public key is {recorded}: copy that key file here (from the first host, or its "
                "backup); a new key would open none of them"
            )
        if key is None:
            key = create_key_file(self.key_file, PrivateKey(bytes.fromhex(legacy)) if legacy else None)
        if legacy is not None:
            if bytes(key).hex() != legacy:
                raise KeyFileError(
                    f"{self.key_file} holds another contact key than the database: keep the one that "
                    "opens your contacts, and delete the other"
                )
            self._forget_legacy_key()
            log.info("contact key moved out of the database into %s", self.key_file)
        self._record_public_key(key, recorded)
        return key

    def _record_public_key(self, key: PrivateKey, recorded: str | None) -> None:
        """The key's public half into the database at first use; KeyFileError if another is there."""
        public = bytes(key.public_key).hex()
        if recorded is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(meta).values(key=PUBLIC_KEY_META, value=public))
                return
            except IntegrityError:  # another process recorded it first
                with self.engine.connect() as conn:
                    recorded = conn.execute(
                        select(meta.c.value).where(meta.c.key == PUBLIC_KEY_META)
                    ).scalar()
        if recorded != public:
            raise KeyFileError(
                f"{self.key_file} holds another contact key than the one this database's numbers are sealed "
                f"to (public key {recorded}): copy the right key file here (from the first host, or its "
                "backup)"
            )

    def _forget_legacy_key(self) -> None:
        """Hubs before the key file kept the private key in table meta: remove it from there."""
        with self.engine.begin() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA secure_delete=ON")  # overwrite the freed page too
            conn.execute(meta.delete().where(meta.c.key == PRIVATE_KEY_META))

    def public_key_hex(self) -> str:
        return bytes(self.private_key.public_key).hex()

    # --- devices -------------------------------------------------------------------------------

    def add_device(self, device_id: str, area_code: str = "", dept_code: str = "") -> tuple[str, bool]:
        """Register ``device_id`` (or give it a new secret); returns (secret hex, whether it existed)."""
        secret = secrets.token_hex(32)
        with self.engine.begin() as conn:
            exists = conn.execute(select(devices.c.id).where(devices.c.id == device_id)).first() is not None
            if exists:
                conn.execute(
                    update(devices)
                    .where(devices.c.id == device_id)
                    .values(secret=secret, area_code=area_code, dept_code=dept_code)
                )
            else:
                conn.execute(
                    insert(devices).values(
                        id=device_id,
                        secret=secret,
                        area_code=area_code,
                        dept_code=dept_code,
                        created_at=utc_now_iso(),
                    )
                )
                signature_policy.set_v1(conn, device_id, False, utc_now_iso())  # registered now: v2 only
        self.secret_cache.forget(device_id)  # after the commit: a request between reads the new one
        return secret, exists

    def v1_allowed(self, device_id: str) -> bool:
        """Whether ``device_id`` may still sign v1 (registered before v2, not yet turned off)."""
        return signature_policy.v1_allowed(self.engine, device_id)

    def turn_off_v1(self, device_id: str) -> bool:
        """Refuse v1 signatures from ``device_id`` from now on; False for an unknown device."""
        with self.engine.begin() as conn:
            if conn.execute(select(devices.c.id).where(devices.c.id == device_id)).first() is None:
                return False
            signature_policy.set_v1(conn, device_id, False, utc_now_iso())
        return True

    def device_secret(self, device_id: str) -> bytes | None:
        """The device's secret (cached for ``SECRET_TTL_S``, see hub/secret_cache.py); None if unknown."""
        return self.secret_cache.get(device_id)

    def _read_device_secret(self, device_id: str) -> bytes | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(devices.c.secret).where(devices.c.id == device_id)).scalar()
        return bytes.fromhex(value) if value is not None else None

    def _read_device_secrets(self) -> dict[str, bytes]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(devices.c.id, devices.c.secret)).all()
        return {str(device_id): bytes.fromhex(str(secret)) for device_id, secret in rows}

    # --- event logs ----------------------------------------------------------------------------

    @property
    def pg_ingest(self) -> PgIngest | None:
        """The PostgreSQL path of what live devices send (hub/ingest_pg.py), None on SQLite."""
        return self._fast

    def ingest(self, device_id: str, log_id: str, batch: Sequence[dict[str, Any]]) -> IngestResult:
        """Store the valid prefix of ``batch`` (events of one log in ascending seq order) once each."""
        now = utc_now_iso()
        if self._fast is not None:
            stored = self._fast.ingest(device_id, log_id, batch, now)
            if stored is not None:
                return IngestResult(stored.acked_seq, stored.stored)
        with self._writer(), self.engine.begin() as conn:
            key = (logs.c.device_id == device_id) & (logs.c.log_id == log_id)
            acked, head = self._lock_log(conn, device_id, log_id, now)
            held = self._held_hashes(conn, device_id, log_id, batch, acked)
            accepted, conflict, conflict_seq = _check_batch(batch, acked, head, held)
            if accepted:
                # 一次一评: the cases of its ratings locked before they are derived, as a phone rating
                # locks its case before it looks for them (in this process as in another).
                upstream_outbox.lock_cases(conn, _rated_cases(accepted))
                conn.execute(insert(events), [event_row(device_id, log_id, e, now) for e in accepted])
                self._derive_ratings(conn, device_id, log_id, accepted)
                cases = [r for r in map(opened_case_row, accepted) if r is not None]
                if cases:
                    conn.execute(
                        insert(opened_cases),
                        [{"device_id": device_id, "log_id": log_id, "received_at": now, **r} for r in cases],
                    )
                acked, head = accepted[-1]["seq"], accepted[-1]["hash"]
                conn.execute(update(logs).where(key).values(acked_seq=acked, head_hash=head))
        return IngestResult(acked, len(accepted), conflict, conflict_seq)

    def _writer(self) -> AbstractContextManager[Any]:
        """This process's one-writer lock on SQLite; nothing on PostgreSQL, whose row locks decide."""
        return self._ingest_lock if self._serial_ingest else nullcontext()

    def _lock_log(self, conn, device_id: str, log_id: str, now: str) -> tuple[int, str]:
        """(acked_seq, head_hash) of the log, its row made if new, locked to the end of the transaction
        and marked seen ``now``: one statement. INSERT … ON CONFLICT DO UPDATE locks the row it meets, and
        waits for another process inserting the same new log (a SELECT … FOR UPDATE would lock nothing
        while the row does not exist yet, and the log would be inserted twice)."""
        dialect_insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        row = dialect_insert(logs).values(
            device_id=device_id,
            log_id=log_id,
            acked_seq=0,
            head_hash=ZERO_HASH,
            first_seen_at=now,
            last_seen_at=now,
        )
        statement = row.on_conflict_do_update(
            index_elements=[logs.c.device_id, logs.c.log_id],
            set_={"last_seen_at": row.excluded.last_seen_at},
        ).returning(logs.c.acked_seq, logs.c.head_hash)
        acked, head = conn.execute(statement).one()
        return acked, head

    @staticmethod
    def _held_hashes(conn, device_id: str, log_id: str, batch: Sequence[dict], acked: int) -> dict[int, str]:
        if not batch or batch[0]["seq"] > acked:
            return {}
        query = select(events.c.seq, events.c.hash).where(
            (events.c.device_id == device_id)
            & (events.c.log_id == log_id)
            & events.c.seq.between(batch[0]["seq"], min(batch[-1]["seq"], acked))
        )
        return dict(conn.execute(query).all())

    @staticmethod
    def _derive_ratings(conn, device_id: str, log_id: str, accepted: list[dict]) -> None:
        rows, details = [], []
        for e in accepted:
            if e["type"] not in ("rating", "rating_detail"):
                continue
            derived = rating_row(e) if e["type"] == "rating" else detail_values(e)
            if derived is None:
                # Stored and chained like any event, but the export cannot show it: say so.
                log.warning(
                    "device %s log %s seq %d: %s payload does not fit the export; stored, not exported",
                    device_id,
                    log_id,
                    e["seq"],
                    e["type"],
                )
            else:
                (rows if e["type"] == "rating" else details).append(derived)
        if rows:
            conn.execute(insert(ratings), [{"device_id": device_id, "log_id": log_id, **r} for r in rows])
            add_window_items(conn, device_id, log_id, rows, utc_now_iso())  # the 差评 desk's 台账
            upstream_outbox.enqueue_window(conn, device_id, log_id, rows)  # reported upward exactly once
        apply_corrections(conn, device_id, log_id, accepted, utc_now_iso())  # before the details
        update_ratings(
            conn, device_id, log_id, details
        )  # after the inserts: a detail may complete one of them
        contacts = sorted({seq for seq, values in details if values.get("contact_sealed") is not None})
        if contacts:  # a detail's phone number makes its 差评 a real-name one in the figures' facts
            fold_item_facts(
                conn,
                (items.c.device_id == device_id) & (items.c.log_id == log_id) & items.c.seq.in_(contacts),
            )
        upstream_outbox.details_arrived(conn, device_id, log_id, [seq for seq, _ in details])

    def log_events(self, device_id: str, log_id: str) -> list[dict[str, Any]]:
        """Every stored event of one log in seq order, as the kiosk wrote it (for audits and tests)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(events)
                .where((events.c.device_id == device_id) & (events.c.log_id == log_id))
                .order_by(events.c.seq)
            ).mappings()
            return [
                {
                    "log_id": r["log_id"],
                    "seq": r["seq"],
                    "id": r["id"],
                    "type": r["type"],
                    "at": r["at"],
                    "payload": json.loads(r["payload"]),
                    "prev_hash": r["prev_hash"],
                    "hash": r["hash"],
                }
                for r in rows
            ]

    def acked_seq(self, device_id: str, log_id: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(logs.c.acked_seq).where((logs.c.device_id == device_id) & (logs.c.log_id == log_id))
            ).scalar()
        return value or 0

    # --- ratings -------------------------------------------------------------------------------

    # --- phone ratings (the QR code page) ------------------------------------------------------

    def opened_case(self, device_id: str, case_no: str) -> dict[str, Any] | None:
        """The payload of the device's latest uploaded case_opened event for ``case_no``, if any."""
        # Through the index of opened_cases (hub/derived.py): one lookup, however many events are held.
        query = (
            select(opened_cases.c.payload)
            .where((opened_cases.c.device_id == device_id) & (opened_cases.c.case_no == case_no))
            .order_by(opened_cases.c.received_at.desc(), opened_cases.c.seq.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            text = conn.execute(query).scalar()
        payload = json.loads(text) if text is not None else None
        return payload if isinstance(payload, dict) else None

    def staff_name(self, device_id: str, staff_no: str) -> str | None:
        """The name the device's roster gives ``staff_no``, if it has one."""
        return next((s["name"] for s in self.roster_for(device_id).staff if s["staff_no"] == staff_no), None)

    def already_rated(self, device_id: str, nonce: str, case_no: str | None) -> bool:
        """Whether this token was used, or the case was rated at the terminal or by phone (一次一评)."""
        with self.engine.connect() as conn:
            return _already_rated(conn, device_id, nonce, case_no)

    def token_rated(self, device_id: str, nonce: str) -> bool:
        """Whether a phone rating was stored with this very token: its holder has rated."""
        query = select(phone_ratings.c.nonce).where(
            (phone_ratings.c.device_id == device_id) & (phone_ratings.c.nonce == nonce)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def add_phone_rating(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """Store one phone rating durably, linked into the phone ratings' hash chain; the stored row, or
        None, storing nothing, when 一次一评 forbids it."""
        for _attempt in range(5):
            try:
                with self._ingest_lock, self.engine.begin() as conn:
                    upstream_outbox.lock_cases(conn, [row["case_no"]] if row["case_no"] else [])
                    if _already_rated(conn, row["device_id"], row["nonce"], row["case_no"]):
                        return None
                    head = conn.execute(
                        select(phone_ratings.c.chain_seq, phone_ratings.c.hash)
                        .where(phone_ratings.c.chain_seq.is_not(None))
                        .order_by(phone_ratings.c.chain_seq.desc())
                        .limit(1)
                    ).first()
                    linked = chain_phone_row(row, tuple(head) if head else None)
                    conn.execute(insert(phone_ratings).values(**linked))
                    add_phone_item(conn, row)  # the 差评 desk's 台账
                    upstream_outbox.enqueue_phone(conn, row)  # reported upward exactly once
                    return linked
            except IntegrityError:
                # Another hub process stored one for this token or case first (then the check above says
                # so next time), or took this chain_seq (then the next link is tried).
                continue
        return None

    # --- rosters and photos --------------------------------------------------------------------

    def import_roster(self, scope: str, staff: Sequence[StaffEntry]) -> str:
        """Replace the roster of ``scope`` (a device id or ALL_DEVICES); returns its new version."""
        entries = [
            {
                "card": s.card,
                "staff_no": s.staff_no,
                "name": s.name,
                "title": s.title,
                "photo_sha256": hashlib.sha256(s.photo).hexdigest() if s.photo is not None else None,
            }
            for s in staff
        ]
        version = hashlib.sha256(canonical_json(entries)).hexdigest()[:32]
        with self.engine.begin() as conn:
            for s, entry in zip(staff, entries, strict=True):
                sha = entry["photo_sha256"]
                if (
                    sha
                    and conn.execute(select(photos.c.sha256).where(photos.c.sha256 == sha)).first() is None
                ):
                    conn.execute(
                        insert(photos).values(sha256=sha, data=s.photo, media_type=s.photo_media_type)
                    )
            conn.execute(roster_staff.delete().where(roster_staff.c.scope == scope))
            conn.execute(rosters.delete().where(rosters.c.scope == scope))
            if entries:
                conn.execute(insert(roster_staff), [{"scope": scope, **e} for e in entries])
            conn.execute(insert(rosters).values(scope=scope, version=version, imported_at=utc_now_iso()))
        return version

    def roster_for(self, device_id: str) -> Roster:
        """The device's own roster if it has one, else the roster for every device, else an empty one."""
        with self.engine.connect() as conn:
            for scope in (device_id, ALL_DEVICES):
                version = conn.execute(select(rosters.c.version).where(rosters.c.scope == scope)).scalar()
                if version is not None:
                    rows = conn.execute(
                        select(
                            roster_staff.c.card,
                            roster_staff.c.staff_no,
                            roster_staff.c.name,
                            roster_staff.c.title,
                            roster_staff.c.photo_sha256,
                        )
                        .where(roster_staff.c.scope == scope)
                        .order_by(roster_staff.c.card)
                    ).mappings()
                    return Roster(version, [dict(r) for r in rows])
        return Roster(EMPTY_ROSTER_VERSION, [])

    def photo(self, sha256: str) -> tuple[bytes, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(photos.c.data, photos.c.media_type).where(photos.c.sha256 == sha256)
            ).first()
        return (bytes(row[0]), row[1]) if row else None


def update_ratings(conn, device_id: str, log_id: str, changes: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Set the column values of each (rating seq, values) of one log: one executemany per set of columns
    (the driver sends them together), not one statement per rating."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for rating_seq, values in changes:
        params = {"rating_seq_": rating_seq, **{f"{k}_": v for k, v in values.items()}}
        by_columns.setdefault(tuple(sorted(values)), []).append(params)
    for columns, rows in by_columns.items():
        conn.execute(
            update(ratings)
            .where(
                (ratings.c.device_id == device_id)
                & (ratings.c.log_id == log_id)
                & (ratings.c.seq == bindparam("rating_seq_"))
            )
            .values({c: bindparam(f"{c}_") for c in columns}),
            rows,
        )


def _rated_cases(accepted: Sequence[dict[str, Any]]) -> list[str]:
    """The case numbers of the rating events among ``accepted``."""
    found = (e["payload"].get("case_no") for e in accepted if e["type"] == "rating")
    return [c for c in found if isinstance(c, str) and c]


def _already_rated(conn, device_id: str, nonce: str, case_no: str | None) -> bool:
    same_device = phone_ratings.c.device_id == device_id
    if case_no is None:
        phone = same_device & (phone_ratings.c.nonce == nonce)
    else:
        phone = same_device & ((phone_ratings.c.nonce == nonce) | (phone_ratings.c.case_no == case_no))
    if conn.execute(select(phone_ratings.c.nonce).where(phone).limit(1)).first() is not None:
        return True
    if case_no is None:
        return False
    terminal = select(ratings.c.seq).where(
        (ratings.c.device_id == device_id) & (ratings.c.case_no == case_no)
    )
    return conn.execute(terminal.limit(1)).first() is not None


def _check_batch(
    batch: Sequence[dict[str, Any]], acked: int, head: str, held: dict[int, str]
) -> tuple[list[dict], str | None, int | None]:
    """The events of ``batch`` to store, and the conflict that stopped the check, if any.

    Events the hub already holds must be identical (else "fork"); the next one must carry seq
    ``acked + 1`` (else "gap"), link to the held head (else "fork": the log was rewritten) and hash
    to what it says (else "bad_hash": it was edited).
    """
    accepted: list[dict] = []
    expected, prev_hash = acked + 1, head
    for e in batch:
        seq = e["seq"]
        if seq < expected:
            if event_hash(e) != e["hash"]:
                return accepted, "bad_hash", seq
            if held.get(seq) != e["hash"]:
                return accepted, "fork", seq
            continue
        problem = chain_error(e, prev_hash, expected)
        if problem == "bad_seq":
            return accepted, "gap", seq
        if problem == "bad_link":
            return accepted, "fork", seq
        if problem is not None:
            return accepted, "bad_hash", seq
        accepted.append(e)
        expected, prev_hash = seq + 1, e["hash"]
    return accepted, None, None
