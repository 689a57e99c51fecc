"""The argument parsers of the desk's `kiosk hub` subcommands; light (no hub imports), for commands/cli.py.
The handlers are in hub.desk.cli."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .roles import ROLE_LABELS, ROLES


def add_parsers(hub_sub, device_sub, storage_args: Callable[..., None]) -> None:
    """The desk's subcommands under `kiosk hub` (commands/cli.py calls this)."""

    def command(parent, name: str, help: str, handler: str) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help)
        storage_args(p, under_hub=True)
        p.set_defaults(handler=f"hub.desk.cli:{handler}")
        return p

    user = hub_sub.add_parser("user", help="the console's users").add_subparsers(
        dest="user_command", metavar="USER_COMMAND", required=True
    )
    p = command(user, "add", "add a user and print a one-time password", "user_add")
    p.add_argument("name", metavar="NAME")
    roles = ", ".join(f"{r} ({ROLE_LABELS[r]})" for r in ROLES)
    p.add_argument("--role", required=True, choices=ROLES, help=roles)
    p.add_argument("--dept", metavar="CODE", help="the section of a dept user")
    command(user, "list", "list the users", "user_list")
    p = command(user, "disable", "disable a user", "user_disable")
    p.add_argument("name", metavar="NAME")
    p = command(user, "token", "print a new API token for a user (once)", "user_token")
    p.add_argument("name", metavar="NAME")

    dept = hub_sub.add_parser("dept", help="sections (科室)").add_subparsers(
        dest="dept_command", metavar="DEPT_COMMAND", required=True
    )
    p = command(dept, "add", "add (or rename) a section", "dept_add")
    p.add_argument("code", metavar="CODE")
    p.add_argument("name", metavar="NAME")
    command(dept, "list", "list the sections", "dept_list")

    p = command(device_sub, "dept", "move a device to another section", "device_dept")
    p.add_argument("id", metavar="ID")
    p.add_argument("dept", metavar="CODE")
