"""The argument parsers of the figures' `kiosk hub` subcommands; light (no hub imports), for
commands/cli.py. The handlers are in hub.figures.cli."""

from __future__ import annotations

from collections.abc import Callable

BY = ("dept", "window", "staff", "item", "day", "month")


def add_parsers(hub_sub, storage_args: Callable[..., None]) -> None:
    p = hub_sub.add_parser(
        "stats",
        help="the figures of a period; --verify recomputes them from the raw record (exit 1 on a difference)",
    )
    storage_args(p, under_hub=True)
    p.add_argument(
        "--period", metavar="P", help="2026-11 (a month), 2026Q4 (a quarter) or 2026-11-28 (a day)"
    )
    p.add_argument("--from", dest="first", metavar="DAY", help="first day, yyyy-MM-dd")
    p.add_argument("--to", dest="last", metavar="DAY", help="last day, yyyy-MM-dd")
    p.add_argument("--by", choices=BY, default="dept")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the API's JSON instead of a table (with --verify: the verdict as JSON)",
    )
    p.add_argument("--verify", action="store_true", help="recompute from the events and compare")
    p.set_defaults(handler="hub.figures.cli:stats")

    p = hub_sub.add_parser("report", help="a 通报 (monthly or quarterly, per section or for the bureau)")
    storage_args(p, under_hub=True)
    p.add_argument("--period", metavar="P", required=True, help="2026-11 (a month) or 2026Q4 (a quarter)")
    p.add_argument("--dept", metavar="CODE", help="one section's 通报 (default: the bureau's)")
    p.add_argument("--public", action="store_true", help="the public version (公开): no personal data")
    p.add_argument("--format", choices=("html", "pdf", "xlsx"), default="pdf")
    p.add_argument("--out", metavar="FILE", required=True)
    p.set_defaults(handler="hub.figures.cli:report")

    p = hub_sub.add_parser("posters", help="A4 PDF posters, one per window, with its QR code")
    storage_args(p, under_hub=True)
    p.add_argument("--out", metavar="FILE", required=True)
    p.add_argument("--url", metavar="URL", help="where the QR code leads (default: [figures] poster_url)")
    p.set_defaults(handler="hub.figures.cli:posters")

    p = hub_sub.add_parser(
        "screen-key", help="a new key for the hall's big screen (/screen?key=…); the old one stops"
    )
    storage_args(p, under_hub=True)
    p.set_defaults(handler="hub.figures.cli:screen_key")
