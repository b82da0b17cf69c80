"""Gateway keys: `tg_<key id>_<secret>`, 256 random bits, stored only as a SHA-256 hash.

A plain hash (not a slow KDF) is right here: the secret is random and high-entropy,
so there is nothing for a dictionary attack to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

PREFIX = "tg"
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 12


@dataclass(frozen=True)
class NewKey:
    key_id: str
    key: str
    hash: str


def generate_key() -> NewKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    return NewKey(key_id=key_id, key=key, hash=hash_key(key))


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    """The key id a presented key claims, or None when it is not a Tollgate key."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != _ID_LENGTH:
        return None
    return parts[1]


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key).encode(), stored_hash.encode())
