"""``kiosk hub user|dept|device dept …``: the desk's users, sections and devices' sections.

Like every ``kiosk hub`` command these open the store named by ``--data DIR`` or ``--db URL``. A one-time
password (``user add``) and an API token (``user token``) are printed once; only their hashes are kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..cli import EXIT_OK, UsageError, _open_store, _run
from .store import DeskError, DeskStore

SECTION_CODE = r"[A-Za-z0-9_-]{1,32}"
USER_NAME = r"[A-Za-z0-9_.@-]{1,64}"


def _desk(args) -> DeskStore:
    from .calendar import WorkCalendar

    # The CLI never computes deadlines: an empty calendar keeps it from reading one.
    return DeskStore(_open_store(args).engine, WorkCalendar(frozenset()))


def _check(pattern: str, value: str, what: str) -> str:
    if not re.fullmatch(pattern, value):
        raise UsageError(f"{what} {value!r}: expected {pattern}")
    return value


def _desk_call(call: Callable[[], object]):
    try:
        return call()
    except DeskError as e:
        raise UsageError(str(e)) from None


@_run
def user_add(args) -> int:
    """`kiosk hub user add NAME --role ROLE [--dept CODE]`: prints a one-time password."""
    name = _check(USER_NAME, args.name, "user name")
    password = _desk_call(lambda: _desk(args).add_user(name, args.role, args.dept))
    print(f"user {name} ({args.role}) added; one-time password (to be changed at the first login):")
    print(password)
    return EXIT_OK


@_run
def user_list(args) -> int:
    """`kiosk hub user list`: name, role, section, state."""
    for u in _desk(args).users():
        state = "disabled" if u["disabled"] else ("must change password" if u["must_change"] else "active")
        token = "token" if u["has_token"] else "-"
        print(f"{u['name']}\t{u['role']}\t{u['dept'] or '-'}\t{state}\t{token}")
    return EXIT_OK


@_run
def user_disable(args) -> int:
    """`kiosk hub user disable NAME`: no login, no token, from now on (the record keeps the name)."""
    _desk_call(lambda: _desk(args).disable_user(args.name))
    print(f"user {args.name} disabled")
    return EXIT_OK


@_run
def user_token(args) -> int:
    """`kiosk hub user token NAME`: a new API token, printed once; the old one stops working."""
    print(_desk_call(lambda: _desk(args).new_token(args.name)))
    return EXIT_OK


@_run
def dept_add(args) -> int:
    """`kiosk hub dept add CODE NAME`: a section (科室); an existing code is renamed."""
    code = _check(SECTION_CODE, args.code, "section code")
    if not args.name.strip():
        raise UsageError("section name: must not be empty")
    new = _desk(args).add_section(code, args.name.strip())
    print(f"section {code} {'added' if new else 'renamed'}: {args.name.strip()}")
    return EXIT_OK


@_run
def dept_list(args) -> int:
    for code, name in _desk(args).sections().items():
        print(f"{code}\t{name}")
    return EXIT_OK


@_run
def device_dept(args) -> int:
    """`kiosk hub device dept ID CODE`: the device's 差评 go to section CODE from now on."""
    _desk_call(lambda: _desk(args).set_device_section(args.id, args.dept))
    print(f"device {args.id} belongs to section {args.dept} from now on")
    return EXIT_OK


def set_device_section(args) -> None:
    """For `kiosk hub device add ID --dept CODE` (hub.cli): after registering."""
    _desk_call(lambda: _desk(args).set_device_section(args.id, args.dept))
