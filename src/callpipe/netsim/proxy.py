"""A UDP impairment proxy on asyncio, driven by the same network models as the simulator.

The proxy listens on a loopback port; datagrams from the client go to the target after the
model's delay, loss, reordering, duplication and queueing (wall-clock send time in, arrival time
out, see :class:`~callpipe.netsim.models.NetworkPath`); replies from the target go back to the
last client address, impaired by ``reverse_model`` or untouched.  It is for end-to-end tests of
real processes on one machine: loopback addresses only, and it closes itself after
``max_run_s``.

::

    async with UdpImpairmentProxy(("127.0.0.1", port), stock_model("wifi"), seed=1) as proxy:
        host, port = proxy.address        # point the sender here
        ...
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from ..errors import ClosedError, TransportError
from .models import NetworkModel, NetworkPath

__all__ = ["UdpImpairmentProxy", "ProxyStats"]


def _loopback(addr: tuple[str, int], what: str) -> tuple[str, int]:
    host, port = addr
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise TransportError(f"the impairment proxy works on loopback only; {what} {host!r} is not")
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise TransportError(f"{what} port must be 0..65535, got {port!r}")
    return host, port


@dataclass
class ProxyStats:
    """Datagram counts of one proxy."""

    received: int = 0
    """From the client."""
    forwarded: int = 0
    """Delivered to the target (duplicates included)."""
    dropped: int = 0
    """Lost by the model."""
    replies: int = 0
    """From the target."""
    replies_forwarded: int = 0
    """Delivered back to the client."""


class _Side(asyncio.DatagramProtocol):
    def __init__(self, proxy: UdpImpairmentProxy, side: str) -> None:
        self.proxy, self.side = proxy, side

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.proxy._received(self.side, data, addr)


class UdpImpairmentProxy:
    """Forward UDP between a client and ``target`` through a :class:`NetworkModel`.

    :param target: the receiver's ``(host, port)``, on loopback.
    :param model: impairments of the client -> target direction.
    :param seed: the model's random seed.
    :param listen: the proxy's ``(host, port)`` for the client (port 0: any free port).
    :param reverse_model: impairments of target -> client replies (``None``: untouched).
    :param max_run_s: the proxy closes itself this many seconds after :meth:`start`.
    :raises TransportError: for a non-loopback address.
    """

    def __init__(
        self,
        target: tuple[str, int],
        model: NetworkModel,
        seed: int = 0,
        listen: tuple[str, int] = ("127.0.0.1", 0),
        reverse_model: NetworkModel | None = None,
        max_run_s: float = 60.0,
    ) -> None:
        self._target = _loopback(target, "target")
        self._listen = _loopback(listen, "listen address")
        if not 0 < max_run_s <= 24 * 3600:
            raise TransportError(f"max_run_s must be 0..86400 s, got {max_run_s!r}")
        self._forward: NetworkPath = model.path(seed)
        self._reverse: NetworkPath | None = (
            reverse_model.path(seed + 1) if reverse_model is not None else None
        )
        self._max_run_s = max_run_s
        self._front: Any = None
        self._back: Any = None
        self._client: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._t0 = 0.0
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False
        self.stats = ProxyStats()
        """Datagram counts."""
        self.address: tuple[str, int] = ("", 0)
        """Where clients send (valid after :meth:`start`)."""

    async def start(self) -> tuple[str, int]:
        """Bind and start forwarding; returns the listening ``(host, port)``."""
        if self._closed:
            raise ClosedError("UdpImpairmentProxy is closed")
        loop = asyncio.get_running_loop()
        self._loop = loop
        try:
            self._front, _ = await loop.create_datagram_endpoint(
                lambda: _Side(self, "client"), local_addr=self._listen
            )
            self._back, _ = await loop.create_datagram_endpoint(
                lambda: _Side(self, "target"), remote_addr=self._target
            )
        except OSError as e:
            await self.close()
            raise TransportError(f"cannot open the proxy sockets: {e}") from None
        self._t0 = loop.time()
        self._timers.add(loop.call_later(self._max_run_s, self._expire))
        self.address = self._front.get_extra_info("sockname")[:2]
        return self.address

    def _expire(self) -> None:
        asyncio.ensure_future(self.close())

    def _received(self, side: str, data: bytes, addr: tuple[str, int]) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        now_ms = (loop.time() - self._t0) * 1000.0
        if side == "client":
            self._client = addr
            self.stats.received += 1
            arrivals = self._forward.transmit(now_ms, len(data))
            if not arrivals:
                self.stats.dropped += 1
            for a in arrivals:
                self._later(a, self._deliver_target, data)
        else:
            self.stats.replies += 1
            if self._reverse is None:
                self._deliver_client(data)
            else:
                for a in self._reverse.transmit(now_ms, len(data)):
                    self._later(a, self._deliver_client, data)

    def _later(self, at_ms: float, fn: Any, data: bytes) -> None:
        assert self._loop is not None
        handle: asyncio.TimerHandle

        def fire() -> None:
            self._timers.discard(handle)
            fn(data)

        handle = self._loop.call_at(self._t0 + at_ms / 1000.0, fire)
        self._timers.add(handle)

    def _deliver_target(self, data: bytes) -> None:
        if self._back is not None and not self._closed:
            self._back.sendto(data)
            self.stats.forwarded += 1

    def _deliver_client(self, data: bytes) -> None:
        if self._front is not None and self._client is not None and not self._closed:
            self._front.sendto(data, self._client)
            self.stats.replies_forwarded += 1

    @property
    def closed(self) -> bool:
        """``True`` once closed (by :meth:`close` or after ``max_run_s``)."""
        return self._closed

    async def close(self) -> None:
        """Stop forwarding, drop datagrams in flight and close the sockets (idempotent)."""
        self._closed = True
        for h in list(self._timers):
            h.cancel()
        self._timers.clear()
        for tr in (self._front, self._back):
            if tr is not None:
                tr.close()
        self._front = self._back = None

    async def __aenter__(self) -> UdpImpairmentProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
