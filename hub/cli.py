"""``kiosk hub …``: serve the hub, register devices, import rosters, export the public key.

Every command opens the store named by ``--data DIR`` (SQLite, default ./hub-data) or ``--db URL``, else
by ``$KIOSK_HUB_DB`` (so a database password need not be on the command line, visible in ps). The
contact key is in ``--key-file PATH``, default contact.key in the data folder. Bad input (an id, a CSV row, a photo, a database URL) is one message and exit 2.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import sys
from pathlib import Path
from typing import cast

import uvicorn
from nacl.public import PrivateKey
from PIL import Image, UnidentifiedImageError
from sqlalchemy import String
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from core.config import DEVICE_ID_PATTERN
from core.photo import MAX_PHOTO_BYTES, MAX_PHOTO_SIDE_PX
from core.systemd import notify, watchdog_interval_s

from .app import create_app
from .config import HubConfig, load_hub_config
from .keys import KeyFileError, key_file_path
from .schema import ALL_DEVICES, roster_staff
from .storage import HubStore, StaffEntry, database_url

log = logging.getLogger("hub")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
ROSTER_REQUIRED_COLUMNS = ("card", "staff_no", "name")
ROSTER_COLUMNS = (*ROSTER_REQUIRED_COLUMNS, "title", "photo")
MAX_CARD_CHARS: int = cast(String, roster_staff.c.card.type).length or 0
DATABASE_ENV = "KIOSK_HUB_DB"


class NotifyingServer(uvicorn.Server):
    """Tells systemd (kiosk-hub.service is Type=notify) when it serves and that its loop is alive."""

    TICK_S = 0.1  # uvicorn's main loop calls on_tick this often

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            notify("READY=1")

    async def on_tick(self, counter: int) -> bool:
        interval = watchdog_interval_s()
        if interval and counter % max(1, int(interval / self.TICK_S)) == 0:
            notify("WATCHDOG=1")
        return await super().on_tick(counter)


class UsageError(Exception):
    """Input the operator must fix; the message names where. Exit 2."""


class HubFailure(Exception):
    """Anything else that stops the command (a database that does not answer). Exit 1."""


def _hub_config(args) -> HubConfig:
    return load_hub_config(getattr(args, "config", None))


def _open_store(args, config: HubConfig | None = None) -> HubStore:
    """The store named by --data or --db, else $KIOSK_HUB_DB, else the file's [database] url, else the
    SQLite database in ./hub-data."""
    config = config or _hub_config(args)
    data, db = getattr(args, "data", None), getattr(args, "db", None)
    if not data and not db:
        db = os.environ.get(DATABASE_ENV) or config.database_url
    try:
        return HubStore(database_url(data, db), key_file_path(data, getattr(args, "key_file", None)))
    except (ArgumentError, NoSuchModuleError) as e:
        raise UsageError(f"--db: not a usable database URL: {e}") from None
    except OperationalError as e:
        raise HubFailure(f"cannot open the hub database: {e.orig}") from None


def _contact_key(store: HubStore) -> PrivateKey:
    """The hub's contact key, made or moved out of the database now (at start) rather than on first use."""
    try:
        return store.private_key
    except KeyFileError as e:
        raise HubFailure(str(e)) from None


def _run(command):
    """One message and exit 2 for a UsageError, exit 1 for a HubFailure, as every `kiosk` command does."""

    def wrapper(args) -> int:
        try:
            return command(args)
        except UsageError as e:
            print(f"kiosk hub: {e}", file=sys.stderr)
            return EXIT_USAGE
        except HubFailure as e:
            print(f"kiosk hub: {e}", file=sys.stderr)
            return EXIT_FAILURE

    wrapper.__doc__ = command.__doc__
    return wrapper


@_run
def serve(args) -> int:
    """`kiosk hub`: the HTTP service, until SIGTERM or Ctrl-C."""
    config = _hub_config(args)
    host, port = args.host or config.server.host, args.port or config.server.port
    store = _open_store(args, config)
    _contact_key(store)
    token = args.admin_token or os.environ.get("KIOSK_HUB_ADMIN_TOKEN") or None
    if token is None:
        log.info("no --admin-token: the ratings export is disabled")
    log.info(
        "hub starting on http://%s:%d, database %s",
        host,
        port,
        store.engine.url.render_as_string(),
    )
    server = NotifyingServer(
        uvicorn.Config(
            create_app(store, token, config=config),
            host=host,
            port=port,
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=5,  # open live feeds (the hall's big screen) never hold a restart
        )
    )
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot listen; it has logged why
        pass
    finally:
        store.close()
    if not server.started:
        raise HubFailure(f"could not listen on {host}:{port}")
    return EXIT_OK


@_run
def device_add(args) -> int:
    """`kiosk hub device add ID`: print the device's new secret (hex) for its secret_file."""
    if not re.fullmatch(DEVICE_ID_PATTERN, args.id):
        raise UsageError(f"device id {args.id!r}: expected 1-64 characters of A-Z a-z 0-9 . _ -")
    if not re.fullmatch(r"(\d{6,9})?", args.area_code):
        raise UsageError(f"--area-code {args.area_code!r}: expected 6-9 digits (行政区划)")
    if not re.fullmatch(r"([0-9A-Z]{18})?", args.dept_code):
        raise UsageError(f"--dept-code {args.dept_code!r}: expected 18 characters (统一社会信用代码)")
    store = _open_store(args)
    if getattr(args, "dept", None):
        from .desk.store import DeskError

        if args.dept not in _desk_sections(store):
            raise UsageError(f"--dept {args.dept}: no such section (kiosk hub dept add {args.dept} NAME)")
    secret, existed = store.add_device(args.id, args.area_code, args.dept_code)
    if getattr(args, "dept", None):
        from .desk.cli import set_device_section

        try:
            set_device_section(args)
        except DeskError as e:
            raise UsageError(str(e)) from None
    if existed:
        print(f"kiosk hub: device {args.id} was registered; its old secret no longer works", file=sys.stderr)
    print(secret)
    return EXIT_OK


def _desk_sections(store: HubStore) -> dict[str, str]:
    from .desk.calendar import WorkCalendar
    from .desk.store import DeskStore

    return DeskStore(store.engine, WorkCalendar(frozenset())).sections()


@_run
def device_v1_off(args) -> int:
    """`kiosk hub device v1-off ID`: from now on the device must sign v2 (docs/protocol.md §2)."""
    store = _open_store(args)
    if not store.turn_off_v1(args.id):
        raise UsageError(f"device {args.id!r} is not registered")
    print(f"device {args.id}: signature version 1 refused from now on")
    return EXIT_OK


@_run
def roster_import(args) -> int:
    """`kiosk hub roster import FILE.csv`: replace the roster of one device (--device) or of all."""
    path = Path(args.file)
    staff = read_roster_csv(path)
    scope = args.device or ALL_DEVICES
    version = _open_store(args).import_roster(scope, staff)
    target = f"device {args.device}" if args.device else "every device without its own roster"
    print(f"imported {len(staff)} staff for {target}; roster version {version}")
    return EXIT_OK


@_run
def key_export(args) -> int:
    """`kiosk hub key export`: the public key (64 hex) the kiosks seal contacts to."""
    print(bytes(_contact_key(_open_store(args)).public_key).hex())
    return EXIT_OK


def read_roster_csv(path: Path) -> list[StaffEntry]:
    """The staff of a roster CSV (card,staff_no,name,title,photo); photo paths are relative to the file."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror}") from None
    text = _csv_text(path, data)
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in ROSTER_REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in ROSTER_COLUMNS]
    if missing or unknown:
        raise UsageError(
            f"{path}: header must be {','.join(ROSTER_COLUMNS)} (missing {missing}, unknown {unknown})"
        )
    staff: list[StaffEntry] = []
    cards: set[str] = set()
    for row in reader:
        where = f"{path}:{reader.line_num}"
        values = {c: (row.get(c) or "").strip() for c in ROSTER_COLUMNS}
        if not all(values[c] for c in ROSTER_REQUIRED_COLUMNS):
            raise UsageError(f"{where}: card, staff_no and name are required")
        if len(values["card"]) > MAX_CARD_CHARS:
            raise UsageError(f"{where}: card has at most {MAX_CARD_CHARS} characters")
        if any("\x00" in v for v in values.values()):  # PostgreSQL text cannot hold it
            raise UsageError(f"{where}: a NUL character in the row")
        if values["card"] in cards:
            raise UsageError(f"{where}: card {values['card']} appears twice")
        cards.add(values["card"])
        photo, media_type = (
            _read_photo(path.parent / values["photo"], where) if values["photo"] else (None, None)
        )
        staff.append(
            StaffEntry(values["card"], values["staff_no"], values["name"], values["title"], photo, media_type)
        )
    return staff


def _csv_text(path: Path, data: bytes) -> str:
    """UTF-8 (an Excel BOM is fine) first, else GB18030: Excel on a Chinese Windows saves "CSV" as GBK,
    which GB18030 contains (the rule of the kiosk's local roster). Bytes neither reads stop the import."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: neither UTF-8 nor GB18030 text (byte {e.start})") from None


def _read_photo(path: Path, where: str) -> tuple[bytes, str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{where}: photo {path}: {e.strerror}") from None
    if len(data) > MAX_PHOTO_BYTES:
        raise UsageError(f"{where}: photo {path} is over {MAX_PHOTO_BYTES // 1024} KB")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max(width, height) > MAX_PHOTO_SIDE_PX:
                raise UsageError(
                    f"{where}: photo {path} is {width}x{height} pixels, at most {MAX_PHOTO_SIDE_PX} a side"
                )
            image.verify()
            media_type = Image.MIME.get(image.format or "", "application/octet-stream")
    except Image.DecompressionBombError:  # so many pixels that Pillow refuses to open it
        raise UsageError(
            f"{where}: photo {path} has too many pixels, at most {MAX_PHOTO_SIDE_PX} a side"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise UsageError(f"{where}: photo {path} is not an image") from None
    return data, media_type
