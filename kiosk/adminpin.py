"""The admin PIN: ``kiosk admin-pin`` makes the salted hash for ``[ui] admin_pin_hash``; the kiosk checks it.

Format ``pbkdf2_sha256$ITERATIONS$SALT_HEX$HASH_HEX`` (hashlib's PBKDF2-HMAC-SHA256, 32-byte hash). The
PIN itself is never stored or logged. ``PinGuard`` is the lock-out that makes guessing a short PIN at the
counter take years: after ``MAX_PIN_FAILURES`` wrong PINs in a row, each further try waits, twice as long
after each failure.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import sys

ITERATIONS = 200_000
SALT_BYTES = 16
MIN_PIN_DIGITS = 4
MAX_PIN_DIGITS = 12
MAX_PIN_FAILURES = 5  # wrong PINs in a row before the pad locks
LOCKOUT_BASE_S = 30  # the first lock; doubled by each failure after it
LOCKOUT_CAP_S = 3600


def hash_pin(pin: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations)
    return f"pbkdf2_sha256${iterations}${salt.hex()}${digest.hex()}"


def verify_pin(pin: str, pin_hash: str | None) -> bool:
    """True when ``pin`` matches; always False without a hash (the admin panel stays locked)."""
    if not pin_hash:
        return False
    try:
        scheme, iterations, salt_hex, hash_hex = pin_hash.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), bytes.fromhex(salt_hex), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), hash_hex)


class PinGuard:
    """Counts wrong PINs in a row and says how long the pad stays locked; times are monotonic seconds."""

    def __init__(self) -> None:
        self.failures = 0
        self._locked_until = 0.0

    def wait_s(self, now: float) -> float:
        """Seconds until a PIN may be tried again; 0 when it may be now."""
        return max(0.0, self._locked_until - now)

    def failed(self, now: float) -> None:
        self.failures += 1
        beyond = self.failures - MAX_PIN_FAILURES
        if beyond >= 0:
            self._locked_until = now + min(LOCKOUT_CAP_S, LOCKOUT_BASE_S * 2 ** min(beyond, 32))

    def succeeded(self) -> None:
        self.failures = 0
        self._locked_until = 0.0


def pin_problem(pin: str) -> str | None:
    """Why ``pin`` cannot be typed on the kiosk's digit keypad, or None when it can."""
    if not pin.isdigit() or not pin.isascii():
        return "the PIN must be digits only (the kiosk's keypad has only digits)"
    if not MIN_PIN_DIGITS <= len(pin) <= MAX_PIN_DIGITS:
        return f"the PIN must have {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits"
    return None


def main(args: object) -> int:
    """``kiosk admin-pin``: read the PIN twice without echo and print the config line to paste."""
    try:
        pin = getpass.getpass("Admin PIN (digits): ")
        again = getpass.getpass("Again: ")
    except EOFError:
        print("admin-pin: no PIN given", file=sys.stderr)
        return 2
    if pin != again:
        print("admin-pin: the two PINs differ", file=sys.stderr)
        return 2
    problem = pin_problem(pin)
    if problem:
        print(f"admin-pin: {problem}", file=sys.stderr)
        return 2
    print("# paste into the [ui] section of the kiosk configuration:")
    print(f'admin_pin_hash = "{hash_pin(pin)}"')
    return 0
