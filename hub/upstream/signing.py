"""Signatures for upward requests, pluggable per deployment: HMAC-SHA256 (the reference profile's) and
the national SM2 signature over an SM3 digest (``gmssl``). A signer signs bytes and returns text; the
stand-in province verifies with the same module. No I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from gmssl import sm2

HMAC_SHA256 = "hmac-sha256"
SM2_SM3 = "sm2-sm3"
ALGORITHMS = (HMAC_SHA256, SM2_SM3)
_SM2_ORDER = int(sm2.default_ecc_table["n"], 16)
_HEX = re.compile(r"[0-9a-fA-F]+")


class SigningKeyError(ValueError):
    """The key does not fit the algorithm; the message says why (never the key)."""


class Signer(Protocol):
    @property
    def algorithm(self) -> str: ...

    def sign(self, message: bytes) -> str: ...


def parse_hex_key(text: str) -> bytes:
    """The bytes a hex key file holds (surrounding whitespace ignored); ValueError if it is not hex."""
    text = text.strip()
    if not text or len(text) % 2 or not _HEX.fullmatch(text):
        raise ValueError("expected an even number of hex digits")
    return bytes.fromhex(text)


@dataclass(frozen=True)
class HmacSha256:
    key: bytes
    algorithm: str = HMAC_SHA256

    def sign(self, message: bytes) -> str:
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def verify(self, message: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(message), signature)


def sm2_public_key(private_key: bytes) -> str:
    """The SM2 public key (128 hex: x and y) of a 32-byte private key."""
    d = int.from_bytes(private_key, "big")
    return sm2.CryptSM2(private_key=private_key.hex(), public_key="")._kg(d, sm2.default_ecc_table["g"])


@dataclass(frozen=True)
class Sm2Sm3:
    """SM2 signature (r||s, 128 hex) of the SM3 digest with the default user id (GB/T 32918, GM/T 0009)."""

    private_key: bytes
    algorithm: str = SM2_SM3

    def __post_init__(self) -> None:
        d = int.from_bytes(self.private_key, "big")
        if len(self.private_key) != 32 or not 1 <= d < _SM2_ORDER - 1:
            raise SigningKeyError("an SM2 private key is 32 bytes (64 hex digits) below the curve order")

    def sign(self, message: bytes) -> str:
        crypt = sm2.CryptSM2(private_key=self.private_key.hex(), public_key=sm2_public_key(self.private_key))
        # gmssl's own nonce comes from `random`, which is predictable: a known nonce reveals the key.
        nonce = secrets.randbelow(_SM2_ORDER - 1) + 1
        return crypt.sign_with_sm3(message, f"{nonce:064x}")


def sm2_verify(public_key: str, message: bytes, signature: str) -> bool:
    try:
        return bool(sm2.CryptSM2(private_key=None, public_key=public_key).verify_with_sm3(signature, message))
    except (ValueError, TypeError, IndexError):
        return False


def make_signer(algorithm: str, key: bytes) -> Signer:
    """The signer of ``algorithm`` over ``key``; ValueError when the key does not fit it."""
    if algorithm == HMAC_SHA256:
        if len(key) < 16:
            raise SigningKeyError("an HMAC key has at least 16 bytes (32 hex digits)")
        return HmacSha256(key)
    if algorithm == SM2_SM3:
        return Sm2Sm3(key)
    raise ValueError(f"unknown signature algorithm {algorithm!r} (one of {', '.join(ALGORITHMS)})")
