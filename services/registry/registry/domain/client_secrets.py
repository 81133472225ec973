"""API client ids and secrets: how they are made, hashed and checked.

A client has an id (`<role>-<16 hex>`, not secret) and a secret (`dcs_` + 43 random URL-safe
characters, 256 bits) that is shown once and stored only as an argon2id hash.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

SECRET_PREFIX = "dcs_"  # noqa: S105 - a prefix that makes leaked secrets easy to spot
MAX_SECRET_LENGTH = 256
MAX_CLIENT_ID_LENGTH = 64

# argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()
_dummy_hash: str | None = None


def new_client_id(role: str) -> str:
    """Return a fresh client id that shows its role."""
    return f"{role}-{secrets.token_hex(8)}"


def new_secret() -> str:
    """Return a fresh client secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def hash_secret(secret: str) -> str:
    """Hash a secret with argon2id, off the event loop."""
    return await asyncio.to_thread(_hasher.hash, secret)


async def secret_matches(secret_hash: str, secret: str) -> bool:
    """Check a secret against its hash in constant time, off the event loop."""
    try:
        return await asyncio.to_thread(_hasher.verify, secret_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(secret_hash: str) -> bool:
    """Tell whether a hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(secret_hash)


async def waste_a_check(secret: str) -> None:
    """Spend the work of one check, so an unknown client id costs what a known one does."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = await hash_secret(new_secret())
    await secret_matches(_dummy_hash, secret)
