"""``kiosk hub …``: serve the hub, register devices, import rosters, export the public key.

Every command opens the store named by ``--data DIR`` (SQLite, default ./hub-data) or ``--db URL``, else
by ``$KIOSK_HUB_DB`` (so a database password need not be on the command line, visible in ps). The
contact key is in ``--key-file PATH``, default contact.key in the data folder. Bad input (an id, a CSV row, a photo, a database URL) is one message and exit 2.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import uvicorn
from nacl.public import PrivateKey
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from core import roster as core_roster
from core.config import DEVICE_ID_PATTERN
from core.progress import task
from core.systemd import notify, watchdog_interval_s

from .app import create_app
from .auth import admin_token_problem
from .config import HubConfig, load_hub_config, upstream_target
from .desk.calendar import CalendarFileError
from .desk.settings import DeskSettings
from .keys import KeyFileError, key_file_path
from .schema import ALL_DEVICES
from .secret_cache import SECRET_TTL_S
from .storage import HubStore, StaffEntry, database_url
from .verify import phone_chain_head, report, run_checks
from .workers import PING, READY, Supervisor, WorkersFailed

log = logging.getLogger("hub")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
DATABASE_ENV = "KIOSK_HUB_DB"


class NotifyingServer(uvicorn.Server):
    """Tells systemd (kiosk-hub.service is Type=notify) when it serves and that its loop is alive; as one
    of ``--workers N`` it tells the supervisor instead (``hub/workers.py``), which tells systemd."""

    TICK_S = 0.1  # uvicorn's main loop calls on_tick this often

    def __init__(self, config: uvicorn.Config, tell=None, ping_every_s: float | None = None):
        super().__init__(config)
        self._tell = tell
        self._ping_every_s = ping_every_s if tell else watchdog_interval_s()

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets)
        if self.started:
            self._tell(READY) if self._tell else notify("READY=1")

    async def on_tick(self, counter: int) -> bool:
        interval = self._ping_every_s
        if interval and counter % max(1, int(interval / self.TICK_S)) == 0:
            self._tell(PING) if self._tell else notify("WATCHDOG=1")
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
    data = getattr(args, "data", None)
    try:
        return HubStore(_database_url(args, config), key_file_path(data, getattr(args, "key_file", None)))
    except (ArgumentError, NoSuchModuleError) as e:
        raise UsageError(f"--db: not a usable database URL: {e}") from None
    except OperationalError as e:
        raise HubFailure(f"cannot open the hub database: {e.orig}") from None


def _database_url(args, config: HubConfig) -> str:
    data, db = getattr(args, "data", None), getattr(args, "db", None)
    if not data and not db:
        db = os.environ.get(DATABASE_ENV) or config.database_url
    return database_url(data, db)


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


# Connections and tasks at once before uvicorn answers 503: below the unit's LimitNOFILE (8192), far above
# a hall's kiosks and phones.
LIMIT_CONCURRENCY = 2048
ADMIN_TOKEN_ENV = "KIOSK_HUB_ADMIN_TOKEN"


def _admin_token(args) -> str | None:
    """The operator token from --admin-token-file, $KIOSK_HUB_ADMIN_TOKEN or (shown by ps) --admin-token."""
    if args.admin_token_file:
        path = Path(args.admin_token_file)
        try:
            token, where = path.read_text(encoding="utf-8").strip(), str(path)
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--admin-token-file {path}: {getattr(e, 'strerror', None) or e}") from None
    elif os.environ.get(ADMIN_TOKEN_ENV):
        token, where = os.environ[ADMIN_TOKEN_ENV].strip(), f"${ADMIN_TOKEN_ENV}"
    elif args.admin_token:
        token, where = args.admin_token, "--admin-token"
        log.warning(
            "--admin-token is shown by ps to every user: use --admin-token-file or $%s", ADMIN_TOKEN_ENV
        )
    else:
        return None
    problem = admin_token_problem(token)
    if problem:
        raise UsageError(f"{where}: the admin token is refused: {problem}")
    return token


@_run
def serve(args) -> int:
    """`kiosk hub`: the HTTP service, until SIGTERM or Ctrl-C; ``--workers N`` processes on PostgreSQL."""
    config = _hub_config(args)
    host, port = args.host or config.server.host, args.port or config.server.port
    count = getattr(args, "workers", 1)
    if count < 1:
        raise UsageError(f"--workers {count}: expected 1 or more")
    if count > 1 and not _database_url(args, config).startswith("postgresql"):
        raise UsageError(
            f"--workers {count}: several hub processes need PostgreSQL (--db postgresql+psycopg://…); "
            "SQLite takes one writer at a time, so run one process on it"
        )
    store = _open_store(args, config)  # migrates the database, once, before any worker starts
    _contact_key(store)
    token = _admin_token(args)
    if token is None:
        log.info("no admin token: the ratings export is disabled")
    desk = _desk_settings(config)
    log.info(
        "hub starting on http://%s:%d, database %s%s",
        host,
        port,
        store.engine.url.render_as_string(),
        f", {count} workers" if count > 1 else "",
    )
    server_config = _server_config(args, host, port)
    if count == 1:
        return _serve_here(store, token, config, desk, args, server_config)
    store.close()  # each worker opens its own pool: connections are never shared across fork
    try:
        sock = server_config.bind_socket()
    except SystemExit:  # uvicorn has logged why
        raise HubFailure(f"could not listen on {host}:{port}") from None

    def work(sock, tell, ping_every_s) -> int:
        worker_store = _open_store(args, config)
        _contact_key(worker_store)
        return _serve_here(worker_store, token, config, desk, args, server_config, [sock], tell, ping_every_s)

    try:
        return Supervisor(count, sock, work).run()
    except WorkersFailed as e:
        raise HubFailure(str(e)) from None
    finally:
        sock.close()


def _desk_settings(config: HubConfig) -> DeskSettings:
    try:
        return DeskSettings.from_config(config)
    except CalendarFileError as e:
        raise UsageError(f"[deadline] calendar_file: {e}") from None
    except OSError as e:
        raise UsageError(f"[[alerts]] secret_file: cannot read {e.filename}: {e.strerror}") from None


def _server_config(args, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        "hub.app:create_app",  # replaced by the app itself in _serve_here
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        # Bounds against slow and many connections (docs/security.md); the nginx in front does the rest.
        limit_concurrency=LIMIT_CONCURRENCY,
        timeout_keep_alive=5,
        root_path=args.root_path,
        timeout_graceful_shutdown=5,  # open live feeds (the hall's big screen) never hold a restart
    )


def _serve_here(
    store: HubStore,
    token: str | None,
    config: HubConfig,
    desk: DeskSettings,
    args,
    server_config: uvicorn.Config,
    sockets=None,
    tell=None,
    ping_every_s: float | None = None,
) -> int:
    """One hub process: the app over ``store`` until SIGTERM (on ``sockets`` when given, as a worker)."""
    app = create_app(store, token, config=config, desk=desk, api_docs=args.api_docs)
    sender = _upstream_sender(store, config)
    app.state.upstream_sender = sender
    server_config.app = app
    server = NotifyingServer(server_config, tell, ping_every_s)
    try:
        if sender is not None:
            sender.start()
        server.run(sockets)
    except SystemExit:  # uvicorn exits when it cannot listen; it has logged why
        pass
    finally:
        if sender is not None:
            sender.stop()
        store.close()
    if not server.started:
        raise HubFailure(f"could not listen on {server_config.host}:{server_config.port}")
    return EXIT_OK


def _upstream_sender(store: HubStore, config: HubConfig):
    """The background sender of ratings to [upstream], or None without that section."""
    if config.upstream is None:
        log.info("no [upstream] in the configuration: nothing is reported upward")
        return None
    from .upstream.sender import Sender

    return Sender(store.engine, upstream_target(config.upstream, config.path))


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
        print(
            f"kiosk hub: device {args.id} was registered; its old secret no longer works "
            f"(on a running hub within {SECRET_TTL_S:g} s)",
            file=sys.stderr,
        )
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
def verify(args) -> int:
    """`kiosk hub verify`: every check of hub/verify.py; exit 1 naming the first difference of each."""
    store = _open_store(args)
    results = run_checks(store)
    print(report(results))
    seq, head = phone_chain_head(store)
    print(f"phone ratings chain head: seq {seq} hash {head} (compare with the hub's journal)")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILURE


@_run
def roster_import(args) -> int:
    """`kiosk hub roster import FILE.csv`: replace the roster of one device (--device) or of all."""
    path = Path(args.file)
    with task("roster import: reading", unit="rows"):  # on a terminal only: photos are checked one by one
        staff = read_roster_csv(path)
    scope = args.device or ALL_DEVICES
    with task("roster import: storing", total=len(staff), unit="staff") as storing:
        version = _open_store(args).import_roster(scope, staff)
        storing.advance(len(staff))
    target = f"device {args.device}" if args.device else "every device without its own roster"
    print(f"imported {len(staff)} staff for {target}; roster version {version}")
    return EXIT_OK


@_run
def key_export(args) -> int:
    """`kiosk hub key export`: the public key (64 hex) the kiosks seal contacts to."""
    print(bytes(_contact_key(_open_store(args)).public_key).hex())
    return EXIT_OK


def read_roster_csv(path: Path) -> list[StaffEntry]:
    """The staff of a roster CSV, by the one rule of core.roster; any problem refuses the whole file."""
    roster_file = core_roster.read_roster_csv(path)
    if roster_file.problems:
        more = len(roster_file.problems) - 1
        raise UsageError(roster_file.problems[0] + (f" (and {more} more problems)" if more else ""))
    return [
        StaffEntry(row.card, row.staff_no, row.name, row.title, row.photo, row.photo_type)
        for row in roster_file.rows
    ]
