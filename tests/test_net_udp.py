"""The client UDP media transport and the wire conventions, against a real UdpMediaPlane on
loopback (in-process, no signaling)."""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

import pytest

from callpipe.errors import ClosedError, TransportError
from callpipe.net.udp import (
    APP_LAYER_REQUEST,
    HELLO_INTERVAL_S,
    HELLO_OK,
    KEEPALIVE_INTERVAL_S,
    MediaTransport,
    UdpSession,
    active_speaker,
    classify,
    hello_datagram,
    layer_request,
    parse_active_speaker,
    parse_layer_request,
)
from callpipe.rtp.packet import RtpPacket
from callpipe.rtp.rtcp import App, Pli, parse_rtcp
from callpipe.sfu.media import UdpMediaPlane
from callpipe.sfu.protocol import Ssrcs
from callpipe.sfu.router import RouterConfig


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_session_sends_hello_every_second_until_answered_then_keeps_alive() -> None:
    token = os.urandom(16)
    s = UdpSession(token, now=10.0)
    assert s.poll(10.0) == b"CPH1" + token and s.poll(10.5) is None
    assert s.next_deadline() == pytest.approx(10.0 + HELLO_INTERVAL_S)
    assert s.poll(11.0) == hello_datagram(token)
    assert s.on_datagram(HELLO_OK, 11.2) is None and s.registered
    assert s.poll(12.5) is None
    assert s.next_deadline() == pytest.approx(11.2 + KEEPALIVE_INTERVAL_S)
    assert s.poll(11.2 + KEEPALIVE_INTERVAL_S) is not None  # keepalive
    rtp = RtpPacket(96, 1, 2, 3, b"x").serialize()
    assert s.on_datagram(rtp, 12) == "rtp"
    assert s.on_datagram(bytes(Pli(1, 2)), 12) == "rtcp"
    assert s.on_datagram(b"\x00garbage", 12) is None
    assert s.on_datagram(b"CPH1??", 12) is None  # not the answer
    st = s.stats()
    assert (st["rtpReceived"], st["rtcpReceived"], st["garbage"], st["hellosSent"]) == (1, 1, 2, 3)
    with pytest.raises(ValueError, match="16 bytes"):
        UdpSession(b"short", 0.0)


def test_classify_and_app_packets() -> None:
    assert classify(b"CPH1" + bytes(16)) == "hello" and classify(HELLO_OK) == "hello"
    assert classify(bytes(Pli(1, 2))) == "rtcp"
    assert classify(RtpPacket(96, 1, 2, 3).serialize()) == "rtp"
    assert classify(b"\x80\x60\x00") is None and classify(b"") is None
    assert classify(b"\x40" * 20) is None  # version 1
    req = layer_request(11, 22, 0)
    (app,) = parse_rtcp(req)
    assert isinstance(app, App) and app.name == APP_LAYER_REQUEST and app.ssrc == 11
    assert parse_layer_request(app.data) == (22, 0)
    assert parse_layer_request(parse_rtcp(layer_request(11, 0, None)).packets[0].data) == (0, None)
    (note,) = parse_rtcp(active_speaker(5, 0xDEADBEEF))
    assert isinstance(note, App) and parse_active_speaker(note.data) == 0xDEADBEEF
    for bad in (b"", b"\x00" * 7, b"\x00\x00\x00\x01\x09\x00\x00\x00"):
        with pytest.raises(ValueError):
            parse_layer_request(bad)
    with pytest.raises(ValueError):
        layer_request(1, 2, 8)
    with pytest.raises(ValueError):
        layer_request(-1, 2, 0)
    with pytest.raises(ValueError):
        parse_active_speaker(b"123")


async def _plane_and_two_peers() -> tuple[UdpMediaPlane, list[tuple[Ssrcs, bytes]]]:
    plane = UdpMediaPlane("127.0.0.1", 0, config=RouterConfig(max_participants=8,
                                                             max_sources=32))  # fmt: skip
    plane.start()
    peers = []
    for i, pid in enumerate(("p1", "p2")):
        ssrcs = Ssrcs(1000 + 10 * i, (1001 + 10 * i,))
        token = os.urandom(16)
        plane.add_participant("room", pid, ssrcs, token)
        peers.append((ssrcs, token))
    return plane, peers


def test_transport_registers_sends_and_receives_through_the_plane() -> None:
    async def scenario() -> None:
        plane, ((s1, t1), (s2, t2)) = await _plane_and_two_peers()
        host, port = plane.endpoint or ("", 0)
        async with await MediaTransport.connect(host, port, t1) as m1, \
                await MediaTransport.connect(host, port, t2) as m2:  # fmt: skip
            assert m1.registered and m2.registered
            pkts = [RtpPacket(111, i, 960 * i, s1.audio, os.urandom(50)).serialize()
                    for i in range(20)]  # fmt: skip
            for p in pkts:
                m1.send_rtp(p)
            got = [(await m2.receive(timeout=2)).data for _ in pkts]
            assert got == pkts
            # feedback for p1's SSRC reaches p1
            m2.send_rtcp(bytes(Pli(s2.audio, s1.video[0])))
            d = await m1.receive(timeout=2)
            assert d.kind == "rtcp" and isinstance(parse_rtcp(d.data).packets[0], Pli)
            # a stranger's datagrams to the client are ignored
            stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            stranger.sendto(pkts[0], m2.local_address)
            stranger.close()
            await asyncio.sleep(0.1)
            assert m2.receive_nowait() == [] and m2.stats()["foreign"] == 1
            with pytest.raises(ValueError, match="not an RTP packet"):
                m1.send_rtp(b"\x00" * 20)
            with pytest.raises(ValueError, match="not an RTCP packet"):
                m1.send_rtcp(pkts[0])
            stats = plane.stats()["rooms"]["room"]["participants"]
            assert stats["p1"]["packets_in"] == 20 and stats["p2"]["packets_out"] == 20
            assert stats["p2"]["plis_forwarded"] == 1 and stats["p1"]["registered"]
        with pytest.raises(ClosedError):
            m1.send_rtp(pkts[0])
        with pytest.raises(ClosedError):
            await m1.receive()
        plane.remove_participant("room", "p1")
        plane.close()
        plane.close()
        assert plane.endpoint is None
        with pytest.raises(ClosedError):
            plane.add_participant("room", "p3", Ssrcs(5, (6,)), os.urandom(16))

    run(scenario())


def test_unknown_token_gets_no_answer() -> None:
    async def scenario() -> None:
        plane, _ = await _plane_and_two_peers()
        host, port = plane.endpoint or ("", 0)
        with pytest.raises(TransportError, match="did not answer HELLO"):
            await MediaTransport.connect(host, port, os.urandom(16), timeout=0.5)
        assert plane.stats()["counters"]["hello_bad"] >= 1
        plane.close()

    run(scenario())


def test_plane_refuses_a_taken_port() -> None:
    plane = UdpMediaPlane("127.0.0.1", 0)
    try:
        with pytest.raises(TransportError, match="cannot bind"):
            UdpMediaPlane("127.0.0.1", (plane.endpoint or ("", 0))[1])
    finally:
        plane.close()
