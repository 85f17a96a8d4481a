"""The SFU's media plane: one UDP socket, the native forwarding loop, the router's timers.

:class:`UdpMediaPlane` implements :class:`~callpipe.sfu.signaling.MediaPlane`: the signaling
server tells it who joined (with SSRCs and media token) and who left; clients register their
UDP address with a HELLO and send RTP/RTCP to :attr:`~UdpMediaPlane.endpoint` (conventions in
:mod:`callpipe.net.udp`).

How it runs on the event loop: the socket is non-blocking and watched with
``loop.add_reader``.  When it is readable, one call into C
(:meth:`~callpipe.sfu._forward.ForwardTable.pump`, GIL released) receives up to
``max_batches`` x ``batch`` datagrams with ``recvmmsg``, routes every one of them and sends the
copies with ``sendmmsg``; only RTCP, registrations and keyframe waits come back to Python
(:meth:`~callpipe.sfu.router.Router.handle_events`).  If the socket still holds data, the
reader fires again on the next loop iteration, so signaling stays responsive under load.  A
timer runs :meth:`~callpipe.sfu.router.Router.tick` (active speaker, last-N, RR + REMB).

Statistics (:meth:`UdpMediaPlane.stats`): per room and participant packets/bytes in and out,
drops (flood, wrong address, temporal layer, last-N, keyframe wait), NACKs received / served
from the cache / forwarded upstream, PLIs received / forwarded / suppressed by the rate limit,
bandwidth estimates; and the native path's table-wide counters (malformed, unknown SSRC,
unregistered, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from ..errors import ClosedError, TransportError
from .protocol import Ssrcs
from .router import Outgoing, Router, RouterConfig

__all__ = ["UdpMediaPlane"]

log = logging.getLogger("callpipe.sfu.media")

#: socket buffer sizes asked for, bytes (the kernel caps them at net.core.{r,w}mem_max)
SOCKET_BUFFER_BYTES = 8 * 1024 * 1024


class UdpMediaPlane:
    """The SFU's UDP media forwarder (a :class:`~callpipe.sfu.signaling.MediaPlane`).

    The socket is bound in the constructor (so :attr:`endpoint` is known before the signaling
    server starts); forwarding begins with :meth:`start`, inside the running event loop.

    :param host: address to bind, e.g. ``"127.0.0.1"`` or ``"0.0.0.0"``.
    :param port: UDP port (0: any free port; see :attr:`endpoint`).
    :param advertise_host: the host clients are told to send to (default: ``host``, or
        ``127.0.0.1`` when ``host`` is a wildcard).
    :param config: the router's settings (:class:`~callpipe.sfu.router.RouterConfig`).
    :param max_batches: recvmmsg batches per readiness callback before yielding to the loop.
    :param clock: monotonic clock, s (must be CLOCK_MONOTONIC-based like ``time.monotonic``:
        the native path stamps arrivals with it).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        advertise_host: str | None = None,
        config: RouterConfig | None = None,
        max_batches: int = 16,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER_BYTES)
            sock.bind((host, port))
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise TransportError(f"cannot bind the media socket on {host}:{port}: {e}") from e
        self.sock = sock
        bound = sock.getsockname()
        wildcard = host in ("0.0.0.0", "::", "")
        self._endpoint = (
            advertise_host or ("127.0.0.1" if wildcard else host),
            int(bound[1]),
        )
        self.router = Router(config, now=clock())
        self.max_batches = max_batches
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.pumps = 0
        self.send_errors = 0

    # ------------------------------------------------------------------ MediaPlane
    @property
    def endpoint(self) -> tuple[str, int] | None:
        """The UDP (host, port) advertised to clients in ``welcome``."""
        return None if self._closed else self._endpoint

    def add_participant(
        self, room: str, participant: str, ssrcs: Ssrcs, media_token: bytes
    ) -> None:
        """Start routing for a participant (see :class:`~callpipe.sfu.signaling.MediaPlane`)."""
        if self._closed:
            raise ClosedError("the media plane is closed")
        self.router.add_participant(room, participant, ssrcs, media_token, self._clock())

    def remove_participant(self, room: str, participant: str) -> None:
        """Stop routing to and from a participant."""
        if not self._closed:
            self.router.remove_participant(room, participant, self._clock())

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Begin forwarding on the running event loop (idempotent)."""
        if self._closed:
            raise ClosedError("the media plane is closed")
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._on_readable)
        self._schedule()
        log.info("media on udp://%s:%d", *self._endpoint)

    def close(self) -> None:
        """Stop forwarding, close the socket, free the native table (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.sock.fileno())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sock.close()
        self.router.close()

    async def __aenter__(self) -> UdpMediaPlane:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ I/O
    def _send(self, out: list[Outgoing]) -> None:
        for data, addr in out:
            try:
                self.sock.sendto(data, addr)
            except OSError:
                self.send_errors += 1

    def _on_readable(self) -> None:
        if self._closed:
            return
        table = self.router.table
        try:
            result = table.pump(self.sock.fileno(), self.max_batches)
        except (TransportError, ValueError) as e:  # a bug, not traffic: log and go on
            log.error("media pump failed: %s", e)
            return
        self.pumps += 1
        if result.error:
            log.debug("media socket error %d", result.error)
        events = table.events()
        if events:
            try:
                self._send(self.router.handle_events(events, self._clock()))
            except Exception:  # a control-plane bug must not stop the forwarding
                log.exception("media plane event handling failed")

    def _schedule(self) -> None:
        if self._closed or self._loop is None:
            return
        delay = max(0.005, self.router.next_deadline() - self._clock())
        self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        if self._closed:
            return
        try:
            self._send(self.router.tick(self._clock()))
        except Exception:  # keep forwarding whatever a timer step did
            log.exception("media plane timer failed")
        self._schedule()

    # ------------------------------------------------------------------ stats
    def room_stats(self, room: str) -> dict[str, Any]:
        """One room's media counters per participant (see :meth:`Router.participant_stats
        <callpipe.sfu.router.Router.participant_stats>`)."""
        if self._closed:
            return {}
        return self.router.room_stats(room)

    def stats(self) -> dict[str, Any]:
        """The media plane's statistics (a JSON object): endpoint, native counters, and per
        room and participant counters (see the module docs)."""
        if self._closed:
            return {"endpoint": None, "closed": True}
        out = self.router.stats()
        out["endpoint"] = f"{self._endpoint[0]}:{self._endpoint[1]}"
        out["pumps"] = self.pumps
        out["sendErrors"] = self.send_errors
        return out
