"""The UDP impairment proxy forwards real datagrams on 127.0.0.1 with the model's loss and
delay (the loss pattern is the seeded model's, so it is exact)."""

from __future__ import annotations

import asyncio
import time

import pytest

from callpipe.errors import TransportError
from callpipe.netsim import NetworkModel, UdpImpairmentProxy, apply_model


class Sink(asyncio.DatagramProtocol):
    def __init__(self, reply: bool = False) -> None:
        self.reply = reply
        self.got: list[tuple[bytes, float]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append((data, time.monotonic()))
        if self.reply:
            assert self.transport is not None
            self.transport.sendto(b"ack" + data[:4], addr)  # a reply through the proxy


async def _exchange(model: NetworkModel, n: int) -> tuple[Sink, Sink, dict[int, float], object]:
    loop = asyncio.get_running_loop()
    sink = Sink(reply=True)
    target, _ = await loop.create_datagram_endpoint(lambda: sink, local_addr=("127.0.0.1", 0))
    port = target.get_extra_info("sockname")[1]
    client_rx = Sink()
    async with UdpImpairmentProxy(("127.0.0.1", port), model, seed=5, max_run_s=10) as proxy:
        client, _ = await loop.create_datagram_endpoint(lambda: client_rx,
                                                        remote_addr=proxy.address)
        sent: dict[int, float] = {}
        for i in range(n):
            sent[i] = time.monotonic()
            client.sendto(i.to_bytes(4, "big") + bytes(60))
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.25)
        stats = proxy.stats
        client.close()
    target.close()
    return sink, client_rx, sent, stats


def test_proxy_applies_loss_and_delay() -> None:
    model = NetworkModel(base_delay_ms=40.0, loss_p=0.3, loss_r=0.7)  # independent 30 % loss
    n = 150
    sink, client_rx, sent, stats = asyncio.run(_exchange(model, n))
    expected = [i for i, a in enumerate(apply_model(model, [0.0] * n, [64] * n, seed=5)) if a]
    got = sorted(int.from_bytes(d[:4], "big") for d, _ in sink.got)
    assert got == expected  # exactly the seeded model's losses
    assert stats.received == n and stats.dropped == n - len(expected)  # type: ignore[attr-defined]
    delays = [(t - sent[int.from_bytes(d[:4], "big")]) * 1000 for d, t in sink.got]
    assert min(delays) >= 39.0  # never earlier than the model's delay
    assert len(client_rx.got) == len(expected)  # replies come back (unimpaired)


def test_proxy_is_loopback_only_and_bounded() -> None:
    with pytest.raises(TransportError, match="loopback"):
        UdpImpairmentProxy(("8.8.8.8", 53), NetworkModel())
    with pytest.raises(TransportError, match="loopback"):
        UdpImpairmentProxy(("127.0.0.1", 9), NetworkModel(), listen=("0.0.0.0", 0))

    async def expire() -> bool:
        proxy = UdpImpairmentProxy(("127.0.0.1", 9), NetworkModel(), max_run_s=0.05)
        await proxy.start()
        await asyncio.sleep(0.2)
        return proxy.closed

    assert asyncio.run(expire())
