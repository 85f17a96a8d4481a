"""``callpipe sfu``: run the SFU: signaling (rooms, join tokens, relay; ws:// or wss://) and the
UDP media plane that forwards RTP without decrypting it.

The media plane (:class:`~callpipe.sfu.media.UdpMediaPlane`) listens on one UDP port (by default
the same number as the signaling TCP port) and is advertised in every ``welcome``; ``--no-media``
runs signaling only (``"media": null``).  Conventions on the UDP port: :mod:`callpipe.net.udp`.
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
from ..sfu.media import UdpMediaPlane
from ..sfu.rooms import Limits
from ..sfu.router import RouterConfig
from ..sfu.signaling import MediaPlane, NullMediaPlane, SignalingServer
from ..sfu.token import secret_bytes
from .token import SECRET_ENV, resolve_secret


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``callpipe sfu``."""
    defaults = Limits()
    p = sub.add_parser(
        "sfu",
        help="run the SFU: signaling (rooms, join tokens, relay) and UDP media forwarding "
        "that never decrypts",
        description="Run the SFU. Signaling over WebSocket: participants join rooms with "
        "join tokens (callpipe token, same secret), get participant ids and RTP SSRCs, see "
        "each other join and leave, and relay roster, key and verification messages the "
        "server cannot read; wss:// when --cert and --key are given. Media over one UDP "
        "port: participants register with the media token of their welcome and send RTP/RTCP; "
        "the server forwards the (end-to-end encrypted) packets to the rest of the room "
        "without decrypting them, with per-receiver temporal-layer selection, NACKs served "
        "from its packet cache, rate-limited PLI forwarding, loss-based bandwidth estimates "
        "(REMB to senders), active speaker and last-N. Prints the signaling URL and the media "
        "endpoint, then runs until SIGTERM or SIGINT, when it closes every connection and "
        "exits 0.",
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
        help="UDP port of the media plane; 0 = any free port (default: the --port number)",
    )
    p.add_argument(
        "--media-host",
        default=None,
        help="host clients are told to send media to (default: --host; 127.0.0.1 for a "
        "wildcard --host)",
    )
    p.add_argument(
        "--no-media",
        action="store_true",
        help="run without the UDP media plane (welcome carries no media endpoint)",
    )
    p.add_argument(
        "--last-n",
        type=int,
        default=0,
        help="forward the video of only the N most recent speakers; 0 = all (default: 0)",
    )
    p.add_argument(
        "--media-packet-rate",
        type=float,
        default=RouterConfig.rate_packets,
        help="RTP/RTCP packets per s one participant may send; more is dropped; 0 = no limit "
        "(default: %(default)g)",
    )
    p.add_argument(
        "--media-byte-rate",
        type=float,
        default=RouterConfig.rate_bytes,
        help="bytes per s one participant may send; 0 = no limit (default: %(default)g)",
    )
    p.add_argument(
        "--cache-packets",
        type=int,
        default=RouterConfig.cache_packets,
        help="packets cached per video stream for NACKs (default: %(default)s)",
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
    """The media plane the server reports joins and leaves to: a
    :class:`~callpipe.sfu.media.UdpMediaPlane` on ``--media-port`` (default: the ``--port``
    number), or a :class:`~callpipe.sfu.signaling.NullMediaPlane` with ``--no-media``."""
    if args.no_media:
        return NullMediaPlane()
    port = args.port if args.media_port is None else args.media_port
    try:
        config = RouterConfig(
            last_n=args.last_n,
            cache_packets=args.cache_packets,
            rate_packets=args.media_packet_rate,
            rate_bytes=args.media_byte_rate,
        )
    except ValueError as e:
        raise CallpipeError(str(e)) from None
    return UdpMediaPlane(args.host, port, advertise_host=args.media_host, config=config)


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


async def _serve(args: argparse.Namespace, server: SignalingServer) -> dict[str, Any] | None:
    """Serve until a signal; the media plane's final stats (None without one)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    media = server.media if isinstance(server.media, UdpMediaPlane) else None
    if media is not None:
        media.start()
    await server.start()
    where = "no media plane" if media is None else "media on udp://{}:{}".format(
        *media.endpoint or ("?", 0)
    )
    print(f"callpipe sfu: signaling on {server.url} ({where})", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()
        media_stats = media.stats() if media is not None else None
        if media is not None:
            media.close()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return media_stats


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
    media_stats = asyncio.run(_serve(args, server))
    # the server is closed: a repeated SIGTERM must not turn this clean exit into a kill
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stats = server.stats()
    stats["media"] = media_stats
    if args.stats_file:
        with open(args.stats_file, "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2)
    print(
        f"callpipe sfu: stopped ({stats['connections_total']} connections, "
        f"{stats['total_joins']} joins, {stats['relayed_messages']} relayed messages)",
        file=sys.stderr,
    )
    return 0
