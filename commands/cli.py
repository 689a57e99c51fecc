"""The ``kiosk`` command line (docs/configuration.md): argument parsing here, each command's work in its module.

Handlers are imported only when their command runs, so ``kiosk sync`` never loads Qt. Exit status:
0 success, 2 usage or configuration error (one message, no traceback), 1 any other failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from core.config import ConfigError
from hub.desk import cli_args as desk_cli
from hub.figures import cli_args as figures_cli

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $KIOSK_CONFIG, /etc/kiosk/kiosk.toml, ./config/kiosk.toml)",
    )


def _hub_storage_args(p: argparse.ArgumentParser, *, under_hub: bool = False) -> None:
    # Under `kiosk hub`, an option not repeated after the subcommand must not reset the one given before it.
    default = argparse.SUPPRESS if under_hub else None
    p.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="hub configuration file (default: $KIOSK_HUB_CONFIG, then /etc/kiosk/hub.toml if it exists)",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--data",
        metavar="DIR",
        default=default,
        help="hub data folder (SQLite database and keys); default ./hub-data",
    )
    g.add_argument(
        "--db",
        metavar="URL",
        default=default,
        help="SQLAlchemy database URL, e.g. postgresql+psycopg://… (default $KIOSK_HUB_DB)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kiosk", description="好差评评价器: evaluation terminal, sync agent, hub"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="the full-screen evaluator")
    _config_arg(p)
    p.add_argument("--windowed", action="store_true", help="an ordinary window instead of full screen")
    p.set_defaults(handler="kiosk.app:main")

    p = sub.add_parser("sync", help="the sync agent: forwards the log to the hub, forever")
    _config_arg(p)
    p.add_argument("--once", action="store_true", help="drain what is pending, print a summary and exit")
    p.set_defaults(handler="sync.agent:main")

    p = sub.add_parser("hub", help="the reference central hub")
    _hub_storage_args(p)
    p.add_argument("--host", help="address to listen on (default [server] host, else 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default [server] port, else 8700)")
    p.add_argument(
        "--admin-token-file",
        metavar="PATH",
        help="file holding the operator token for /api/v1/ratings (or $KIOSK_HUB_ADMIN_TOKEN); 32+ characters",
    )
    p.add_argument("--admin-token", metavar="TOKEN", help="the operator token itself (ps shows it: avoid)")
    p.add_argument(
        "--root-path",
        default="",
        metavar="PREFIX",
        help="the path prefix a proxy strips before passing requests on (v2 signatures cover it)",
    )
    p.add_argument(
        "--api-docs", action="store_true", help="serve /docs, /redoc and /openapi.json (off by default)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="N hub processes on one port (PostgreSQL only; docs/hub.md); default 1",
    )
    key_file_help = "the 0600 file of the key that opens contacts (default contact.key in --data)"
    p.add_argument("--key-file", metavar="PATH", help=key_file_help)
    p.set_defaults(handler="hub.cli:serve")
    hub_sub = p.add_subparsers(dest="hub_command", metavar="HUB_COMMAND")
    device = hub_sub.add_parser("device", help="device registry").add_subparsers(
        dest="device_command", metavar="DEVICE_COMMAND", required=True
    )
    d = device.add_parser("add", help="register a device and print its new secret (hex)")
    d.add_argument("id", metavar="ID")
    d.add_argument(
        "--area-code", default="", help="行政区划 code of the device's hall (areaCode in the export)"
    )
    d.add_argument(
        "--dept-code", default="", help="统一社会信用代码 of its department (deptCode in the export)"
    )
    d.add_argument("--dept", metavar="CODE", help="the section (科室) whose 差评 the device's are")
    _hub_storage_args(d, under_hub=True)
    d.set_defaults(handler="hub.cli:device_add")
    d = device.add_parser("v1-off", help="refuse signature version 1 from a device registered before 0.2.0")
    d.add_argument("id", metavar="ID")
    _hub_storage_args(d, under_hub=True)
    d.set_defaults(handler="hub.cli:device_v1_off")
    v = hub_sub.add_parser(
        "verify", help="re-check every stored chain and re-derive the derived tables; exit 1 on a difference"
    )
    _hub_storage_args(v, under_hub=True)
    v.set_defaults(handler="hub.cli:verify")
    desk_cli.add_parsers(hub_sub, device, _hub_storage_args)
    roster = hub_sub.add_parser("roster", help="staff rosters").add_subparsers(
        dest="roster_command", metavar="ROSTER_COMMAND", required=True
    )
    r = roster.add_parser("import", help="import a roster CSV (card,staff_no,name,title,photo)")
    r.add_argument("file", metavar="FILE.csv")
    r.add_argument("--device", metavar="ID", help="only for this device (default: every device)")
    _hub_storage_args(r, under_hub=True)
    r.set_defaults(handler="hub.cli:roster_import")
    figures_cli.add_parsers(hub_sub, _hub_storage_args)
    key = hub_sub.add_parser("key", help="the hub's keypair for sealed contacts").add_subparsers(
        dest="key_command", metavar="KEY_COMMAND", required=True
    )
    k = key.add_parser("export", help="print the public key (hex) for the kiosks' hub.public_key_file")
    _hub_storage_args(k, under_hub=True)
    k.add_argument("--key-file", metavar="PATH", default=argparse.SUPPRESS, help=key_file_help)
    k.set_defaults(handler="hub.cli:key_export")
    ratings = hub_sub.add_parser("ratings", help="the ratings the hub holds").add_subparsers(
        dest="ratings_command", metavar="RATINGS_COMMAND", required=True
    )
    e = ratings.add_parser(
        "export", help="print the ratings in the national field names (as GET /api/v1/ratings)"
    )
    e.add_argument("--from", dest="from_", metavar="DATE", help="yyyy-MM-dd or an ISO date-time")
    e.add_argument("--to", metavar="DATE", help="yyyy-MM-dd (the whole day) or an ISO date-time")
    e.add_argument("--format", choices=("json", "csv"), default="json")
    _hub_storage_args(e, under_hub=True)
    e.add_argument("--key-file", metavar="PATH", default=argparse.SUPPRESS, help=key_file_help)
    e.set_defaults(handler="hub.export:ratings_export")
    _hub_upstream_parsers(hub_sub)

    p = sub.add_parser("sim", help="simulated card reader, ticket feed and keypad on pseudo-terminals")
    p.add_argument("--config-out", metavar="PATH", help="also write a [serial.*] config fragment here")
    p.add_argument("--roster", metavar="CSV", help="roster to swipe staff by name")
    p.set_defaults(handler="drivers.sim:main")

    p = sub.add_parser("doctor", help="check the installation and print a table")
    _config_arg(p)
    p.set_defaults(handler="commands.doctor:main")

    p = sub.add_parser("export", help="print the local event log")
    _config_arg(p)
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.set_defaults(handler="commands.logtools:export")

    p = sub.add_parser("store", help="the local event log")
    store_sub = p.add_subparsers(dest="store_command", metavar="STORE_COMMAND", required=True)
    v = store_sub.add_parser("verify", help="verify the log's hash chain")
    _config_arg(v)
    v.set_defaults(handler="commands.logtools:verify")

    p = sub.add_parser("demo", help="hub, simulator, sync agent and kiosk at once on an embedded default")
    p.add_argument("--offscreen", action="store_true", help="play the scripted tour without a display")
    p.add_argument("--out", metavar="DIR", default="demo-out", help="where the tour saves screenshots")
    p.set_defaults(handler="commands.demo:main")

    p = sub.add_parser("screenshot", help="render every page at the reference sizes to PNG")
    _config_arg(p)
    p.add_argument("--out", metavar="DIR", required=True)
    p.add_argument("--audit", action="store_true", help="also run the accessibility checks on each page")
    p.set_defaults(handler="kiosk.screenshot:main")

    p = sub.add_parser("voice", help="spoken prompts: generate the default set, play one, check the device")
    _config_arg(p)
    voice_sub = p.add_subparsers(dest="voice_command", required=True)
    g = voice_sub.add_parser("generate", help="speak the captions with espeak-ng into WAV files")
    g.add_argument("--out", metavar="DIR", required=True)
    pl = voice_sub.add_parser("play", help="play one prompt on [voice] device")
    pl.add_argument("name", help="welcome, rate, reasons, reasons_qr or thanks")
    voice_sub.add_parser("check", help="play a short silence on [voice] device")
    p.set_defaults(handler="kiosk.voice:main")

    p = sub.add_parser("admin-pin", help="print the salted hash of an admin PIN for [ui] admin_pin_hash")
    p.set_defaults(handler="kiosk.adminpin:main")
    return parser


def _hub_upstream_parsers(hub_sub) -> None:
    """`kiosk hub upstream …`: the outbox of ratings reported to the province (docs/upstream.md)."""
    upstream = hub_sub.add_parser("upstream", help="ratings reported to the province").add_subparsers(
        dest="upstream_command", metavar="UPSTREAM_COMMAND", required=True
    )
    u = upstream.add_parser("status", help="counts by status, reconciliation per day, records waiting")
    u.add_argument("--status", help="list the records of this status")
    u.add_argument("--days", type=int, default=14, help="days of reconciliation to print (default 14)")
    u.set_defaults(handler="hub.upstream.cli:status")
    commands = [u]
    u = upstream.add_parser("send", help="send what is due now to [upstream] and exit")
    u.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    u.set_defaults(handler="hub.upstream.cli:send")
    commands.append(u)
    u = upstream.add_parser("retry", help="every failing record due now (the cause is fixed)")
    u.set_defaults(handler="hub.upstream.cli:retry")
    commands.append(u)
    u = upstream.add_parser("resend", help="send a rejected record again (after fixing the cause)")
    u.add_argument("id", type=int, metavar="ID", nargs="?")
    u.add_argument("--all-rejected", action="store_true", help="every rejected record (a key fixed, say)")
    u.add_argument("--note", default="", help="what was fixed")
    u.set_defaults(handler="hub.upstream.cli:resend")
    commands.append(u)
    u = upstream.add_parser("link", help="link a record to its case number (办件编号)")
    u.add_argument("id", type=int, metavar="ID")
    u.add_argument("project_no", metavar="PROJECT_NO")
    u.add_argument("--task-code", help="事项编码, when the rating lacks it")
    u.add_argument("--task-name", help="事项名称, when the rating lacks it")
    u.add_argument("--note", default="", help="where the case number comes from")
    u.set_defaults(handler="hub.upstream.cli:link")
    commands.append(u)
    u = upstream.add_parser("not-reportable", help="mark a record not reportable, with the reason")
    u.add_argument("id", type=int, metavar="ID")
    u.add_argument("--reason", required=True)
    u.set_defaults(handler="hub.upstream.cli:not_reportable")
    commands.append(u)
    for u in commands:
        _hub_storage_args(u, under_hub=True)


def _version() -> str:
    from core import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # Alembic logs each plugin and step at INFO on every hub start and command; the hub's own
        # line says what was migrated. Its warnings still show; --verbose shows everything.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    module_name, func_name = args.handler.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):
            print(f"kiosk {args.command}: not built yet", file=sys.stderr)
            return EXIT_USAGE
        raise
    try:
        return getattr(module, func_name)(args)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (`kiosk export | head`): stop quietly; nothing more is flushed to the pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
