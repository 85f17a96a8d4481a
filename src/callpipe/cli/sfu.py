"""``callpipe sfu``: run the SFU's signaling server (rooms, join tokens, relay; ws:// or wss://).

Signaling only for now: media forwarding is not wired yet.  The media plane plugs in at
:func:`make_media_plane`; until the UDP forwarder lands it returns a
:class:`~callpipe.sfu.signaling.NullMediaPlane`, which records participants and advertises no
media endpoint (``welcome`` carries ``"media": null``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import ssl
import sys
from typing import Any

from ..errors import CallpipeError
from ..sfu.rooms import Limits
from ..sfu.signaling import MediaPlane, NullMediaPlane, SignalingServer
from ..sfu.token import secret_bytes
from .token import SECRET_ENV, resolve_secret

MEDIA_NOTE = "signaling only; media forwarding not wired yet"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``callpipe sfu``."""
    defaults = Limits()
    p = sub.add_parser(
        "sfu",
        help=f"run the SFU's signaling server: rooms, join tokens, relay ({MEDIA_NOTE})",
        description="Run the SFU's WebSocket signaling server: participants join rooms with "
        "join tokens (callpipe token, same secret), get participant ids and RTP SSRCs, see "
        "each other join and leave, and relay roster, key and verification messages the "
        "server cannot read. Serves wss:// when --cert and --key are given. "
        f"NOTE: {MEDIA_NOTE} -- the server does not forward RTP yet (welcome carries "
        "\"media\": null); --media-port is reserved for the forwarder. Prints the URL it "
        "listens on, then runs until SIGTERM or SIGINT, when it closes every connection "
        "and exits 0.",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    p.add_argument(
        "--port", type=int, default=8765, help="TCP port; 0 = any free port (default: %(default)s)"
    )
    p.add_argument("--secret", help=f"join-token secret (default: ${SECRET_ENV})")
    p.add_argument("--cert", help="PEM certificate (chain) file: serve wss:// (needs --key)")
    p.add_argument("--key", help="PEM private key file for --cert")
    p.add_argument(
        "--media-port",
        type=int,
        default=None,
        help=f"UDP port for the media plane (reserved: {MEDIA_NOTE}, so it is ignored)",
    )
    p.add_argument(
        "--room",
        action="append",
        default=None,
        help="allow only this room (repeatable; default: rooms are created by valid tokens)",
    )
    p.add_argument(
        "--max-participants",
        type=int,
        default=defaults.max_participants,
        help="participants per room (default: %(default)s)",
    )
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=defaults.max_message_bytes,
        help="largest signaling message in bytes (default: %(default)s)",
    )
    p.add_argument(
        "--rate",
        type=float,
        default=defaults.rate_messages_per_s,
        help="messages per s one client may send, sustained (default: %(default)g)",
    )
    p.add_argument(
        "--burst",
        type=int,
        default=defaults.burst_messages,
        help="messages one client may send at once above --rate (default: %(default)s)",
    )
    p.add_argument(
        "--stats-file",
        default=None,
        help="write the server's final statistics (JSON) here on shutdown",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log joins, leaves and errors")
    p.set_defaults(func=run)
    return p


def make_media_plane(args: argparse.Namespace) -> MediaPlane:
    """The media plane the server reports joins and leaves to.

    Extension point for the UDP forwarder: return its :class:`MediaPlane` here.  For now this
    is a :class:`NullMediaPlane`: signaling only; media forwarding not wired yet.
    """
    if args.media_port is not None:
        print(
            f"callpipe sfu: --media-port {args.media_port} ignored: {MEDIA_NOTE}",
            file=sys.stderr,
        )
    return NullMediaPlane()


def _ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise CallpipeError("--cert and --key go together (wss:// needs both)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise CallpipeError(f"cannot load certificate {cert!r} / key {key!r}: {e}") from None
    return ctx


async def _serve(args: argparse.Namespace, server: SignalingServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    print(f"callpipe sfu: signaling on {server.url} ({MEDIA_NOTE})", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(args: argparse.Namespace) -> int:
    """Run the server until SIGTERM/SIGINT."""
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="callpipe sfu: %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:  # failed handshakes (port scans, plain HTTP) are not our errors
        logging.getLogger("websockets").setLevel(logging.CRITICAL)
    try:
        secret = secret_bytes(resolve_secret(args.secret))
        limits = Limits(
            max_participants=args.max_participants,
            max_message_bytes=args.max_message_bytes,
            hard_max_message_bytes=max(4 * args.max_message_bytes, Limits.hard_max_message_bytes),
            burst_bytes=max(Limits.burst_bytes, 2 * args.max_message_bytes),
            rate_messages_per_s=args.rate,
            burst_messages=args.burst,
        )
    except ValueError as e:
        raise CallpipeError(str(e)) from None
    server = SignalingServer(
        args.host,
        args.port,
        secret,
        _ssl_context(args.cert, args.key),
        media=make_media_plane(args),
        limits=limits,
        rooms=args.room,
    )
    asyncio.run(_serve(args, server))
    # the server is closed: a repeated SIGTERM must not turn this clean exit into a kill
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stats = server.stats()
    if args.stats_file:
        with open(args.stats_file, "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2)
    print(
        f"callpipe sfu: stopped ({stats['connections_total']} connections, "
        f"{stats['total_joins']} joins, {stats['relayed_messages']} relayed messages)",
        file=sys.stderr,
    )
    return 0
