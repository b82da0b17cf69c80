"""Entra ID bearer tokens as Azure OpenAI and Foundry take them, checked the way Azurite's
`--oauth basic` does: the claims are read (audience, expiry), the signature is not, since the
tokens come from the tests' own managed-identity stand-in."""

from __future__ import annotations

import base64
import json
import time
from typing import Any


def entra_token_accepted(token: str, audience: str) -> bool:
    """A JWT for `audience` (with or without its trailing slash), not yet expired."""
    if not audience or token.count(".") != 2:
        return False
    claims = _claims(token.split(".")[1])
    if claims is None:
        return False
    exp = claims.get("exp")
    fresh = isinstance(exp, int | float) and exp > time.time()
    return fresh and str(claims.get("aud", "")).rstrip("/") == audience.rstrip("/")


def _claims(part: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
