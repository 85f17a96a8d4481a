"""Join tokens: HMAC-SHA256, expiry with injected time, clear refusals; `callpipe token`."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.sfu.protocol import ErrorCode
from callpipe.sfu.token import (
    DEFAULT_LEEWAY,
    TokenError,
    issue_token,
    peek_token,
    verify_token,
)

SECRET = "correct horse battery staple 42"
T0 = 1_700_000_000.0


def _refused(token: str, code: str, secret: str = SECRET, **kw: object) -> TokenError:
    with pytest.raises(TokenError) as info:
        verify_token(secret, token, **kw)  # type: ignore[arg-type]
    assert info.value.code == code, str(info.value)
    return info.value


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_issue_and_verify_round_trip() -> None:
    token = issue_token(SECRET, "standup", "Alice", user="alice-7", ttl=600, now=T0)
    claims = verify_token(SECRET, token, room="standup", now=T0 + 1)
    assert (claims.room, claims.name, claims.user) == ("standup", "Alice", "alice-7")
    assert (claims.issued_at, claims.expires_at) == (int(T0), int(T0) + 600)
    assert len(claims.nonce) == 32
    assert peek_token(token) == claims  # readable without the secret
    assert verify_token(SECRET.encode(), token, now=T0) == claims  # bytes secret, no room check
    # two tokens for the same claims differ (nonce); a random user id is filled in
    again = issue_token(SECRET, "standup", "Alice", user="alice-7", ttl=600, now=T0)
    assert again != token
    assert peek_token(issue_token(SECRET, "r", "Bob", now=T0)).user.startswith("u-")


def test_expiry_with_injected_time() -> None:
    token = issue_token(SECRET, "r", "n", ttl=60, now=T0)
    verify_token(SECRET, token, now=T0 + 59.999)
    err = _refused(token, ErrorCode.TOKEN_EXPIRED, now=T0 + 60)
    assert "expired" in str(err) and "new one" in str(err)
    _refused(token, ErrorCode.TOKEN_EXPIRED, now=T0 + 86400)


def test_issued_in_the_future_beyond_clock_skew() -> None:
    token = issue_token(SECRET, "r", "n", ttl=3600, now=T0)
    verify_token(SECRET, token, now=T0 - DEFAULT_LEEWAY)  # within the leeway
    _refused(token, ErrorCode.TOKEN_NOT_YET_VALID, now=T0 - DEFAULT_LEEWAY - 1)
    _refused(token, ErrorCode.TOKEN_NOT_YET_VALID, now=T0 - 10, leeway=5)


def test_wrong_room() -> None:
    token = issue_token(SECRET, "room-a", "n", now=T0)
    err = _refused(token, ErrorCode.TOKEN_WRONG_ROOM, room="room-b", now=T0)
    assert "'room-a'" in str(err) and "'room-b'" in str(err)


def test_forged_and_altered_tokens_are_bad_signatures() -> None:
    token = issue_token(SECRET, "room-a", "Mallory", now=T0)
    prefix, claims_part, sig = token.split(".")
    # another secret
    _refused(issue_token("another secret, 32 bytes long...", "room-a", "M", now=T0),
             ErrorCode.TOKEN_BAD_SIGNATURE, now=T0)  # fmt: skip
    # claims rewritten (another room, a later expiry), signature kept
    claims = json.loads(base64.urlsafe_b64decode(claims_part + "=="))
    for change in ({"room": "room-b"}, {"exp": claims["exp"] + 10**6}, {"name": "Alice"}):
        forged = f"{prefix}.{_b64u(json.dumps({**claims, **change}).encode())}.{sig}"
        _refused(forged, ErrorCode.TOKEN_BAD_SIGNATURE, now=T0)
    # signature altered in one character, truncated, or missing
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    for bad_sig in (flipped, sig[:-4], ""):
        _refused(f"{prefix}.{claims_part}.{bad_sig}", ErrorCode.TOKEN_BAD_SIGNATURE, now=T0)
    # the signature is checked before expiry and room: a forgery never learns which one failed
    expired_forgery = f"{prefix}.{claims_part}.{flipped}"
    _refused(expired_forgery, ErrorCode.TOKEN_BAD_SIGNATURE, room="zzz", now=T0 + 10**7)


@pytest.mark.parametrize(
    "token",
    ["", "cpt1", "cpt1..", "cpt2.a.b", "cpt1.a.b.c", "x" * 5000, "cpt1.a.%%%", "cpt1.a.b c"],
)
def test_malformed_tokens(token: str) -> None:
    _refused(token, ErrorCode.TOKEN_MALFORMED, now=T0)


def test_well_signed_but_invalid_claims_are_malformed() -> None:
    from callpipe.sfu.token import _mac

    for claims in ({"room": "r"}, [], {"room": "r", "name": "n", "user": "u", "iat": "0",
                                       "exp": 1, "nonce": "0" * 32}):  # fmt: skip
        part = _b64u(json.dumps(claims).encode())
        token = f"cpt1.{part}.{_b64u(_mac(SECRET.encode(), part))}"
        _refused(token, ErrorCode.TOKEN_MALFORMED, now=T0)


def test_bad_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        issue_token("short", "r", "n")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        verify_token(b"short", "cpt1.a.b")
    with pytest.raises(ValueError, match="ttl"):
        issue_token(SECRET, "r", "n", ttl=0)
    with pytest.raises(ValueError, match="name"):
        issue_token(SECRET, "r", "")
    with pytest.raises(ValueError, match="user id"):
        issue_token(SECRET, "r", "n", user="has space")
    with pytest.raises(Exception, match="invalid room name"):
        issue_token(SECRET, "bad room", "n")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_is_refused_cleanly(text: str) -> None:
    with pytest.raises(TokenError):
        verify_token(SECRET, text, now=T0)
    with pytest.raises(TokenError):
        verify_token(SECRET, "cpt1." + text, now=T0)


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "CALLPIPE_SECRET"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "callpipe.cli.main", "token", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=full_env,
    )


def test_cli_prints_a_verifiable_token() -> None:
    res = _cli("--secret", SECRET, "--room", "daily", "--name", "Ann Lee", "--ttl", "120")
    assert res.returncode == 0, res.stderr
    claims = verify_token(SECRET, res.stdout.strip(), room="daily")
    assert claims.name == "Ann Lee" and claims.expires_at - claims.issued_at == 120
    res = _cli("--room", "daily", "--name", "n", "--user", "u1", env={"CALLPIPE_SECRET": SECRET})
    assert res.returncode == 0, res.stderr
    assert verify_token(SECRET, res.stdout.strip(), room="daily").user == "u1"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--room", "r", "--name", "n"), "CALLPIPE_SECRET"),
        (("--secret", "short", "--room", "r", "--name", "n"), "at least 16 bytes"),
        (("--secret", SECRET, "--room", "no spaces", "--name", "n"), "invalid room name"),
        (("--secret", SECRET, "--room", "r", "--name", "n", "--ttl", "-5"), "ttl"),
    ],
)
def test_cli_errors_are_clear(args: tuple[str, ...], words: str) -> None:
    res = _cli(*args)
    assert res.returncode == 1
    assert words in res.stderr and "Traceback" not in res.stderr
