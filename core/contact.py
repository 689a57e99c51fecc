"""Rater contact data, sealed before it is stored (实名评价, 第十六条).

The kiosk seals a phone number to the hub's X25519 public key (a libsodium sealed box): the kiosk
itself cannot open what it wrote, and neither can anyone with the kiosk's database. Only the hub's
private key opens it, for the operator export. No I/O here except reading a key file.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

# 11-digit mainland mobile numbers; a landline is not offered on the on-screen keypad. ASCII digits
# only: \d would admit full-width and other Unicode digits, which the sealed form cannot encode.
PHONE_PATTERN = re.compile(r"1[3-9][0-9]{9}")


class ContactError(ValueError):
    pass


def valid_phone(phone: str) -> bool:
    return PHONE_PATTERN.fullmatch(phone) is not None


def mask_phone(phone: str) -> str:
    """What the screen shows while a number is typed: 138****5678."""
    if len(phone) <= 3:
        return phone
    if len(phone) <= 7:
        return phone[:3] + "*" * (len(phone) - 3)
    return phone[:3] + "****" + phone[7:]


def mask_case_no(case_no: str) -> str:
    """3702**********0012, CA****30: enough of a case number to recognise one's own case, not enough to
    read someone else's off a screen. The kiosk's rate page and the hub's phone page both show this."""
    if len(case_no) <= 4:
        return "*" * len(case_no)
    keep = 4 if len(case_no) >= 12 else 2
    return case_no[:keep] + "*" * (len(case_no) - 2 * keep) + case_no[-keep:]


def load_public_key(path: Path) -> PublicKey:
    """The hub's public key as `kiosk hub key export` prints it: 64 hex characters."""
    try:
        return PublicKey(bytes.fromhex(path.read_text().strip()))
    except (ValueError, TypeError) as e:
        raise ContactError(
            f"{path}: expected 64 hex characters (a public key from `kiosk hub key export`)"
        ) from e


def seal_contact(phone: str, public_key: PublicKey) -> str:
    if not valid_phone(phone):
        raise ContactError("not an 11-digit mobile number")
    return base64.b64encode(SealedBox(public_key).encrypt(phone.encode("ascii"))).decode("ascii")


def open_contact(sealed: str, private_key: PrivateKey) -> str:
    try:
        return SealedBox(private_key).decrypt(base64.b64decode(sealed, validate=True)).decode("ascii")
    except (CryptoError, ValueError) as e:
        raise ContactError("sealed contact cannot be opened with this key") from e
