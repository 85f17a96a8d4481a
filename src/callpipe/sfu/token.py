"""Join tokens: expiring, HMAC-SHA256-signed invitations to one room.

The application's backend (or ``callpipe token``) issues a token with a secret it shares with
the SFU; the SFU lets a participant into a room only with a valid, unexpired token for that
room.  This keeps strangers out of the room.  It does not replace end-to-end encryption, which
keeps the server itself out of the media.

Format (ASCII, URL-safe)::

    cpt1.<claims>.<signature>
    claims    = base64url(claims JSON)
    signature = base64url(HMAC-SHA256(secret, "callpipe-join-token-v1." || claims))

Claims: ``room``, ``name`` (display name), ``user`` (the application's user id), ``iat``
(issued-at, Unix time in s), ``exp`` (expiry, Unix time in s) and ``nonce`` (16 random bytes,
hex), so that two tokens issued in the same second differ.  Base64url is unpadded.

The server binds a token to the first identity key that joins with it: the same participant
may use it again until it expires (reconnects), any other identity is refused with
``token-used``.  (The binding lives in the server's memory.)

Verification checks the signature first, in constant time (:func:`hmac.compare_digest`), so a
forged or altered token is always reported as ``token-bad-signature``, never as expired or for
another room; then the claims.  Time is injected (``now``) for tests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from ..errors import AuthenticationError, CallpipeError
from .protocol import ErrorCode, check_room_name

__all__ = [
    "TOKEN_PREFIX",
    "MIN_SECRET_LEN",
    "DEFAULT_TTL",
    "DEFAULT_LEEWAY",
    "JoinToken",
    "TokenError",
    "issue_token",
    "verify_token",
    "peek_token",
    "secret_bytes",
]

#: first part of every token (format version 1)
TOKEN_PREFIX = "cpt1"
#: shortest accepted shared secret, in bytes
MIN_SECRET_LEN = 16
#: default lifetime of a token, in s
DEFAULT_TTL = 3600.0
#: how far in the future ``iat`` may lie (clock skew between backend and SFU), in s
DEFAULT_LEEWAY = 60.0
#: longest token accepted, in characters
MAX_TOKEN_LEN = 2048

_DOMAIN = b"callpipe-join-token-v1."
_B64U_RE = re.compile(r"[A-Za-z0-9_-]+")
_USER_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_NONCE_RE = re.compile(r"[0-9a-f]{32}")
_MAX_NAME = 64
_CLAIMS = ("room", "name", "user", "iat", "exp", "nonce")


class TokenError(AuthenticationError):
    """A join token was refused; ``code`` is one of the ``token-*`` :class:`ErrorCode` values.

    :param code: machine-readable reason (``token-malformed``, ``token-bad-signature``,
        ``token-expired``, ``token-not-yet-valid``, ``token-wrong-room``).
    :param message: human-readable explanation.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class JoinToken:
    """The verified claims of a join token.

    :param room: the room the token admits to.
    :param name: the participant's display name.
    :param user: the application's user id for the participant.
    :param issued_at: when the token was issued, Unix time in s.
    :param expires_at: when the token expires, Unix time in s.
    :param nonce: 16 random bytes as 32 hex digits.
    """

    room: str
    name: str
    user: str
    issued_at: int
    expires_at: int
    nonce: str


def secret_bytes(secret: str | bytes) -> bytes:
    """The shared secret as bytes (UTF-8 for text); :class:`ValueError` if too short."""
    raw = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(raw) < MIN_SECRET_LEN:
        raise ValueError(
            f"the token secret must be at least {MIN_SECRET_LEN} bytes long (got {len(raw)}); "
            "use a long random string, e.g. `python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`"
        )
    return raw


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64u(text: str) -> bytes:
    if text and not _B64U_RE.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, claims_part: str) -> bytes:
    return hmac.new(key, _DOMAIN + claims_part.encode("ascii"), hashlib.sha256).digest()


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME or not name.isprintable():
        raise ValueError(f"invalid name {name!r}: 1..{_MAX_NAME} printable characters")
    return name


def _check_user(user: object) -> str:
    if not isinstance(user, str) or not _USER_RE.fullmatch(user):
        raise ValueError(f"invalid user id {user!r}: 1..64 of A-Z a-z 0-9 . _ -")
    return user


def issue_token(
    secret: str | bytes,
    room: str,
    name: str,
    *,
    user: str | None = None,
    ttl: float = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    """Issue a join token.

    :param secret: the secret shared with the SFU (at least 16 bytes).
    :param room: the room the token admits to.
    :param name: the participant's display name (1..64 printable characters).
    :param user: the application's user id (1..64 of ``A-Z a-z 0-9 . _ -``); random if None.
    :param ttl: lifetime in s (> 0).
    :param now: the current Unix time in s (default: the system clock).
    :raises ValueError: for an invalid argument (names the argument).
    """
    key = secret_bytes(secret)
    check_room_name(room)
    _check_name(name)
    user = _check_user(user if user is not None else "u-" + secrets.token_hex(6))
    if not ttl > 0:
        raise ValueError(f"ttl must be > 0 s, not {ttl!r}")
    t = time.time() if now is None else now
    claims = {
        "room": room,
        "name": name,
        "user": user,
        "iat": int(t),
        "exp": int(t + ttl),
        "nonce": secrets.token_hex(16),
    }
    part = _b64u(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{TOKEN_PREFIX}.{part}.{_b64u(_mac(key, part))}"


def _split(token: object) -> tuple[str, bytes]:
    if not isinstance(token, str):
        raise TokenError(ErrorCode.TOKEN_MALFORMED, "a join token must be a string")
    if len(token) > MAX_TOKEN_LEN:
        raise TokenError(ErrorCode.TOKEN_MALFORMED, f"join token longer than {MAX_TOKEN_LEN}")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise TokenError(
            ErrorCode.TOKEN_MALFORMED,
            f"not a callpipe join token (expected '{TOKEN_PREFIX}.<claims>.<signature>')",
        )
    if not parts[1] or not _B64U_RE.fullmatch(parts[1]):
        raise TokenError(ErrorCode.TOKEN_MALFORMED, "join token claims are not base64url")
    try:
        mac = _unb64u(parts[2])
    except (ValueError, binascii.Error):
        raise TokenError(
            ErrorCode.TOKEN_MALFORMED, "join token signature is not base64url"
        ) from None
    return parts[1], mac


def _claims(part: str) -> JoinToken:
    try:
        obj: Any = json.loads(_unb64u(part).decode("utf-8"))
    except (ValueError, binascii.Error, RecursionError):
        raise TokenError(ErrorCode.TOKEN_MALFORMED, "join token claims are not JSON") from None
    if not isinstance(obj, dict) or sorted(obj) != sorted(_CLAIMS):
        raise TokenError(
            ErrorCode.TOKEN_MALFORMED, f"join token claims must be exactly {', '.join(_CLAIMS)}"
        )
    try:
        room = check_room_name(obj["room"])
        name = _check_name(obj["name"])
        user = _check_user(obj["user"])
        iat, exp = obj["iat"], obj["exp"]
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (iat, exp)):
            raise ValueError("iat and exp must be non-negative integers")
        if not isinstance(obj["nonce"], str) or not _NONCE_RE.fullmatch(obj["nonce"]):
            raise ValueError("nonce must be 32 hex digits")
    except (ValueError, CallpipeError) as e:  # CallpipeError: ProtocolError of the room name
        raise TokenError(ErrorCode.TOKEN_MALFORMED, f"join token claims invalid: {e}") from None
    return JoinToken(room, name, user, iat, exp, obj["nonce"])


def peek_token(token: str) -> JoinToken:
    """Read a token's claims **without verifying it** (a client learning its room and name).

    :raises TokenError: ``token-malformed`` if it is not a well-formed token.
    """
    part, _ = _split(token)
    return _claims(part)


def verify_token(
    secret: str | bytes,
    token: str,
    *,
    room: str | None = None,
    now: float | None = None,
    leeway: float = DEFAULT_LEEWAY,
) -> JoinToken:
    """Verify a join token and return its claims.

    :param secret: the shared secret the token must be signed with.
    :param token: the token text.
    :param room: the room the participant asks to join; None skips the room check.
    :param now: the current Unix time in s (default: the system clock).
    :param leeway: allowed clock skew for ``iat`` in the future, in s.
    :raises TokenError: ``token-malformed``, ``token-bad-signature``, ``token-expired``,
        ``token-not-yet-valid`` or ``token-wrong-room``.
    """
    key = secret_bytes(secret)
    part, mac = _split(token)
    if not hmac.compare_digest(mac, _mac(key, part)):
        raise TokenError(
            ErrorCode.TOKEN_BAD_SIGNATURE,
            "join token signature does not verify (forged, altered, or issued with another secret)",
        )
    claims = _claims(part)
    t = time.time() if now is None else now
    if t >= claims.expires_at:
        raise TokenError(
            ErrorCode.TOKEN_EXPIRED,
            f"join token expired {t - claims.expires_at:.0f} s ago (at Unix time "
            f"{claims.expires_at}); ask for a new one",
        )
    if claims.issued_at > t + leeway:
        raise TokenError(
            ErrorCode.TOKEN_NOT_YET_VALID,
            f"join token issued {claims.issued_at - t:.0f} s in the future (clock skew?)",
        )
    if room is not None and claims.room != room:
        raise TokenError(
            ErrorCode.TOKEN_WRONG_ROOM,
            f"join token is for room {claims.room!r}, not {room!r}",
        )
    return claims
