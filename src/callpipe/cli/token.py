"""``callpipe token``: issue a join token for a room (what the application's backend does)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import CallpipeError
from ..sfu.token import DEFAULT_TTL, issue_token

#: environment variable holding the token secret shared with the SFU
SECRET_ENV = "CALLPIPE_SECRET"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``callpipe token``."""
    p = sub.add_parser(
        "token",
        help="issue an expiring, HMAC-signed join token for one room of an SFU",
        description="Print a join token that admits one participant to one room of an SFU "
        "started with the same secret (callpipe sfu). The token is HMAC-SHA256-signed and "
        "expires after --ttl seconds. It keeps strangers out of the room; end-to-end "
        f"encryption keeps the server out of the media. The secret comes from --secret or "
        f"the {SECRET_ENV} environment variable (at least 16 bytes).",
    )
    p.add_argument("--secret", help=f"the shared secret (default: ${SECRET_ENV})")
    p.add_argument("--room", required=True, help="the room the token admits to")
    p.add_argument("--name", required=True, help="the participant's display name")
    p.add_argument(
        "--user", default=None, help="the application's user id (default: a random one)"
    )
    p.add_argument(
        "--ttl",
        type=float,
        default=DEFAULT_TTL,
        help="lifetime in s (default: %(default)g)",
    )
    p.set_defaults(func=run)
    return p


def resolve_secret(secret: str | None) -> str:
    """The secret from the option or the environment; :class:`CallpipeError` if neither."""
    value = secret if secret is not None else os.environ.get(SECRET_ENV)
    if not value:
        raise CallpipeError(f"no secret: pass --secret or set {SECRET_ENV}")
    return value


def run(args: argparse.Namespace) -> int:
    """Print one token."""
    secret = resolve_secret(args.secret)
    try:
        token = issue_token(secret, args.room, args.name, user=args.user, ttl=args.ttl)
    except ValueError as e:
        raise CallpipeError(str(e)) from None
    except CallpipeError as e:  # an invalid room name
        raise CallpipeError(str(e)) from None
    sys.stdout.write(token + "\n")
    return 0
