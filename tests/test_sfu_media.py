"""The SFU's media plane end to end: a real `callpipe sfu` process, real clients on loopback.

Clients join through SignalingClient, register over UDP (MediaTransport), and send real VP8
frames (Vp8Encoder, 3 temporal layers) encrypted with SFrame under keys only the clients hold,
packetized by the VP8 packetizer (descriptor and frame marking in clear).  The SFU process is
only ever given the join-token secret.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sfuproc import SfuProcess

from callpipe.codecs.vp8 import Vp8Decoder, Vp8Encoder
from callpipe.e2ee.sframe import SFrameReceiver, SFrameSender
from callpipe.errors import AuthenticationError
from callpipe.media.synthetic import SyntheticVideoSource
from callpipe.net.signaling import ParticipantLeft, SignalingClient
from callpipe.net.udp import (
    AUDIO_LEVEL_EXT_ID,
    FRAME_MARKING_EXT_ID,
    Datagram,
    MediaTransport,
    layer_request,
)
from callpipe.rtp.packet import RtpPacket, encode_audio_level
from callpipe.rtp.rtcp import Nack, Pli, parse_rtcp
from callpipe.rtp.vp8 import Vp8FrameAssembler, Vp8Packetizer
from callpipe.sfu import issue_token

SECRET = "media-plane-test-secret-0123456789"
W, H = 160, 96


class Sfu(SfuProcess):
    """A `callpipe sfu` process on free ports (signaling and media) writing its final
    statistics to a file."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.stats_file = tmp / f"sfu-stats-{time.monotonic_ns()}.json"
        super().__init__("--stats-file", str(self.stats_file), *args, secret=SECRET)

    def stop_with_stats(self) -> tuple[int, str, dict[str, Any]]:
        """SIGTERM; exit code, stderr, and the final statistics."""
        code, err = self.stop()
        stats = json.loads(self.stats_file.read_text()) if self.stats_file.exists() else {}
        return code, err, stats


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sfu]:
    server = Sfu(tmp_path_factory.mktemp("sfu-media"))
    yield server
    code, err, stats = server.stop_with_stats()
    assert code == 0 and "Traceback" not in err, err
    assert stats["media"]["counters"]["forwarded"] > 0


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


class Client:
    """A participant: signaling, UDP media, its own SFrame key, a VP8 encoder."""

    def __init__(self, name: str, sig: SignalingClient, media: MediaTransport) -> None:
        self.name = name
        self.sig = sig
        self.media = media
        ssrcs = sig.you.ssrcs
        self.audio_ssrc = ssrcs.audio
        self.video_ssrc = ssrcs.video[0]
        self.key = os.urandom(16)  # the SFU never sees this
        self.kid = self.video_ssrc & 0xFFFF
        self.sframe = SFrameSender()
        self.sframe.add_key(self.kid, self.key)
        self.packetizer = Vp8Packetizer(
            self.video_ssrc, 96, temporal_layers=True, frame_marking_id=FRAME_MARKING_EXT_ID
        )
        self.encoder: Vp8Encoder | None = None
        self.source = SyntheticVideoSource(W, H, fps=30, realtime=False)
        self.frame_no = 0
        self.audio_seq = 0
        self.plaintexts: list[bytes] = []
        self.received: list[Datagram] = []

    @classmethod
    async def join(cls, sfu: Sfu, room: str, name: str) -> Client:
        sig = await SignalingClient.connect(sfu.url, issue_token(SECRET, room, name),
                                            os.urandom(32), name)  # fmt: skip
        assert sig.media is not None and sig.media.port == sfu.media_port
        media = await MediaTransport.connect(sig.media.host, sig.media.port, sig.media.token)
        return cls(name, sig, media)

    def send_frames(self, count: int, keyframe_first: bool = False) -> list[list[bytes]]:
        """Encode, encrypt, packetize and send ``count`` frames; the packets per frame."""
        if self.encoder is None:
            self.encoder = Vp8Encoder(W, H, 300, fps=30, temporal_layers=3, cpu_used=-8)
        frames = []
        for i in range(count):
            picture = self.source.render(self.frame_no)
            self.frame_no += 1
            for ef in self.encoder.encode(picture, keyframe=keyframe_first and i == 0):
                self.plaintexts.append(ef.data)
                packets = self.packetizer.packetize_frame(ef, self.sframe.encrypt(ef.data))
                for p in packets:
                    self.media.send_rtp(p)
                frames.append(packets)
        return frames

    def send_audio(self, level: int, count: int = 1) -> None:
        for _ in range(count):
            self.audio_seq += 1
            ext = [(AUDIO_LEVEL_EXT_ID, encode_audio_level(True, level))]
            self.media.send_rtp(RtpPacket(111, self.audio_seq, 960 * self.audio_seq,
                                          self.audio_ssrc, os.urandom(40),
                                          extensions=ext).serialize())  # fmt: skip

    async def collect(self, until: Any = None, timeout: float = 3.0, quiet: float = 0.3) -> None:
        """Receive until ``until(self)`` holds (or ``quiet`` s without data), at most
        ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until(self):
                return
            try:
                self.received.append(await self.media.receive(timeout=quiet))
            except TimeoutError:
                if until is None:
                    return

    def rtp_from(self, ssrc: int) -> list[bytes]:
        return [d.data for d in self.received
                if d.kind == "rtp" and RtpPacket.parse(d.data).ssrc == ssrc]  # fmt: skip

    def rtcp(self) -> list[Any]:
        return [p for d in self.received if d.kind == "rtcp" for p in parse_rtcp(d.data)]

    async def close(self) -> None:
        self.media.close()
        await self.sig.close()
        self.sframe.close()
        if self.encoder is not None:
            self.encoder.close()


def decode_stream(packets: list[bytes], keys: dict[int, bytes]) -> tuple[int, int]:
    """Assemble, decrypt and decode; (frames decoded, losses)."""
    receiver = SFrameReceiver()
    for kid, key in keys.items():
        receiver.add_key(kid, key)
    frames = 0
    with Vp8FrameAssembler(frame_marking_id=FRAME_MARKING_EXT_ID, encrypted=True) as asm, \
            Vp8Decoder() as dec:  # fmt: skip
        assembled = asm.push_many(packets) + asm.flush()
        for f in assembled:
            picture = dec.decode(receiver.decrypt(f.data))
            assert picture is not None and (picture.width, picture.height) == (W, H)
            frames += 1
        losses = len(asm.take_losses())
    receiver.close()
    return frames, losses


def test_three_clients_get_each_others_ciphertext_unchanged(sfu: Sfu) -> None:
    async def scenario() -> None:
        a, b, c = [await Client.join(sfu, "trio", n) for n in ("Alice", "Bob", "Carol")]
        clients = (a, b, c)
        sent: dict[int, list[bytes]] = {}
        for x in clients:
            sent[x.video_ssrc] = [p for f in x.send_frames(10, keyframe_first=True) for p in f]
        total = sum(len(v) for v in sent.values())
        for x in clients:
            mine = len(sent[x.video_ssrc])
            await x.collect(lambda x, n=total - mine: sum(d.kind == "rtp" for d in x.received) >= n)
        for x in clients:
            for y in clients:
                if y is x:
                    continue
                got = x.rtp_from(y.video_ssrc)
                assert got == sent[y.video_ssrc], f"{x.name} from {y.name}"  # byte-identical
                frames, losses = decode_stream(got, {y.kid: y.key})
                assert frames == 10 and losses == 0
                # the payloads are ciphertext: plaintext VP8 never crossed the wire ...
                wire = b"".join(d.data for d in x.received)
                for pt in y.plaintexts:
                    assert pt[:24] not in wire and pt[-24:] not in wire
                # ... and only the sender's key opens it, not a key the SFU could have made up
                with pytest.raises(AuthenticationError):
                    decode_stream(got, {y.kid: os.urandom(16)})
            assert x.rtp_from(x.video_ssrc) == []  # nobody gets their own media back
        for x in clients:
            await x.close()

    run(scenario())


def test_tl0_receiver_gets_contiguous_decodable_base_layer(sfu: Sfu) -> None:
    async def scenario() -> None:
        a, b, c = [await Client.join(sfu, "layers", n) for n in ("A", "B", "C")]
        c.media.send_rtcp(layer_request(c.audio_ssrc, a.video_ssrc, 0))
        await asyncio.sleep(0.2)  # let the request land before the media
        frames = a.send_frames(24, keyframe_first=True)
        flat = [p for f in frames for p in f]
        tl0 = [p for f in frames for p in f if frame_tid(f[0]) == 0]
        await b.collect(lambda x: len(x.rtp_from(a.video_ssrc)) >= len(flat))
        await c.collect(lambda x: len(x.rtp_from(a.video_ssrc)) >= len(tl0), timeout=2.0)
        assert b.rtp_from(a.video_ssrc) == flat
        got = c.rtp_from(a.video_ssrc)
        assert len(got) == len(tl0) < len(flat)
        seqs = [RtpPacket.parse(p).sequence_number for p in got]
        assert all((y - x) % 65536 == 1 for x, y in zip(seqs, seqs[1:], strict=False)), seqs
        for mine, orig in zip(got, tl0, strict=True):  # only the sequence number was rewritten
            assert mine[4:] == orig[4:]
        decoded, losses = decode_stream(got, {a.kid: a.key})
        assert decoded == 24 // 4 and losses == 0  # pattern 0 2 1 2: every 4th frame
        for x in (a, b, c):
            await x.close()

    run(scenario())


def frame_tid(packet: bytes) -> int:
    """Temporal id from the frame marking extension of a packet."""
    from callpipe.rtp.packet import decode_frame_marking

    raw = RtpPacket.parse(packet).extension(FRAME_MARKING_EXT_ID)
    assert raw is not None
    return int(decode_frame_marking(raw).temporal_id)


def test_nack_is_served_from_the_cache_and_pli_reaches_the_sender_rate_limited(sfu: Sfu) -> None:
    async def scenario() -> None:
        a, b = [await Client.join(sfu, "repair", n) for n in ("A", "B")]
        flat = [p for f in a.send_frames(6, keyframe_first=True) for p in f]
        await b.collect(lambda x: len(x.rtp_from(a.video_ssrc)) >= len(flat))
        got = b.rtp_from(a.video_ssrc)
        assert got == flat
        # B "loses" one packet locally and NACKs it: the SFU answers, A hears nothing of it
        lost = RtpPacket.parse(got[3]).sequence_number
        b.received.clear()
        b.media.send_rtcp(bytes(Nack.from_lost(b.audio_ssrc, a.video_ssrc, [lost])))
        await b.collect(lambda x: len(x.rtp_from(a.video_ssrc)) >= 1)
        assert b.rtp_from(a.video_ssrc) == [got[3]]
        # PLI burst: A gets one; after the interval, the next one
        a.received.clear()
        pli = bytes(Pli(b.audio_ssrc, a.video_ssrc))
        for _ in range(5):
            b.media.send_rtcp(pli)
        await a.collect(timeout=0.6, quiet=0.6)
        await asyncio.sleep(0.1)
        b.media.send_rtcp(pli)
        await a.collect(timeout=0.6, quiet=0.6)
        from_b = [p for p in a.rtcp() if isinstance(p, Pli) and p.sender_ssrc == b.audio_ssrc]
        assert len(from_b) == 2 and all(p.media_ssrc == a.video_ssrc for p in from_b)
        assert not [p for p in a.rtcp() if isinstance(p, Nack)]  # the NACK never went upstream
        for x in (a, b):
            await x.close()

    run(scenario())


def test_active_speaker_is_announced(sfu: Sfu) -> None:
    async def scenario() -> None:
        a, b = [await Client.join(sfu, "talk", n) for n in ("A", "B")]
        for _ in range(30):  # A speaks at -20 dBov, B is silent
            a.send_audio(20)
            b.send_audio(127)
            await asyncio.sleep(0.02)
        await b.collect(lambda x: any(getattr(p, "name", None) == b"CPAS" for p in x.rtcp()))
        notes = [p for p in b.rtcp() if getattr(p, "name", None) == b"CPAS"]
        assert notes and notes[-1].data == a.audio_ssrc.to_bytes(4, "big")
        for x in (a, b):
            await x.close()

    run(scenario())


def test_bad_datagrams_and_a_flood_hurt_nobody_and_leave_stops_forwarding(tmp_path: Path) -> None:
    server = Sfu(tmp_path)
    try:
        asyncio.run(asyncio.wait_for(_abuse(server), 60))
    finally:
        code, err, stats = server.stop_with_stats()
    assert code == 0 and "Traceback" not in err, err
    c = stats["media"]["counters"]
    assert c["malformed"] >= 2 and c["unknown_ssrc"] >= 1 and c["hello_bad"] >= 1
    assert c["wrong_address"] >= 1 and c["unregistered"] >= 1
    assert c["flood_dropped"] >= 10_000
    departed = {d["participant"]: d for d in stats["media"]["departed"]}
    assert departed["p3"]["dropped_in"] >= 10_000  # the flooder (third to join)
    assert departed["p1"]["packets_in"] > 0 and departed["p2"]["packets_out"] > 0


async def _abuse(server: Sfu) -> None:
    a, b, f = [await Client.join(server, "abuse", n) for n in ("A", "B", "Flooder")]
    late = await SignalingClient.connect(server.url, issue_token(SECRET, "abuse", "Late"),
                                         os.urandom(32), "Late")  # fmt: skip
    mallory = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    target = ("127.0.0.1", server.media_port)
    probe = a.packetizer.packetize(b"\x00" * 100, 1)[0]
    mallory.sendto(b"\xff" * 40, target)  # garbage
    mallory.sendto(b"\x80", target)  # too short
    mallory.sendto(b"CPH1" + os.urandom(16), target)  # a HELLO with a made-up token
    mallory.sendto(probe, target)  # A's SSRC from the wrong address
    mallory.sendto(RtpPacket(96, 1, 1, 0xDEAD, b"x").serialize(), target)  # nobody's SSRC
    late_video = late.you.ssrcs.video[0]
    mallory.sendto(RtpPacket(96, 1, 1, late_video, b"x").serialize(), target)  # before HELLO
    # the flood: 20 000 packets at 20 000/s from a registered participant, while A talks to B
    flood = RtpPacket(111, 0, 0, f.audio_ssrc, os.urandom(100)).serialize()
    sock = f.media._transport.get_extra_info("socket")  # type: ignore[union-attr]
    from callpipe.sfu import _forward

    blaster = asyncio.get_running_loop().run_in_executor(
        None, _forward.blast, sock.fileno(), target, flood, 20000.0, 5.0, 20000, 16
    )
    sent = []
    for _ in range(4):
        sent += [p for fr in a.send_frames(5, keyframe_first=not sent) for p in fr]
        await asyncio.sleep(0.1)
    assert (await blaster)[0] == 20000
    await b.collect(lambda x: len(x.rtp_from(a.video_ssrc)) >= len(sent), timeout=5.0)
    assert b.rtp_from(a.video_ssrc) == sent  # every packet of A, in order, untouched
    assert len(b.rtp_from(f.audio_ssrc)) < 5000  # the flood was cut to the rate limit
    # A leaves: B is told, and what A's socket still sends goes nowhere
    await a.sig.leave()
    while not isinstance(event := await b.sig.next_event(5.0), ParticipantLeft):
        pass  # the joins of F and Late come first
    assert event.participant_id == a.sig.participant_id
    await b.collect(timeout=2.0, quiet=0.2)  # drain what the flood left queued
    b.received.clear()
    a.send_frames(5)
    f.send_audio(30, count=3)  # others still get through
    await b.collect(lambda x: len(x.rtp_from(f.audio_ssrc)) >= 3, timeout=2.0)
    await b.collect(timeout=0.3)
    assert b.rtp_from(a.video_ssrc) == [] and len(b.rtp_from(f.audio_ssrc)) == 3
    mallory.close()
    await late.close()
    for x in (a, b, f):
        await x.close()


def test_bench_sfu_smoke_runs_both_sides() -> None:
    from callpipe.benchmarking import sfu as bench

    (comp,) = bench.run_suite(repeats=1, fanouts=(2,), seconds=0.3)
    assert len(comp.ours) == len(comp.reference) == 1
    assert comp.ours[0] > 0 and comp.reference[0] > 0
    assert "participants per node" in comp.note
    assert bench.participants_per_node(0) == 1 < bench.participants_per_node(300_000)
