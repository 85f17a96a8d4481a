"""The call media pipelines, driven synchronously with injected time (no sockets, no tasks):
real libvpx/libopus, real SFrame, real RTP/RTCP; packets are handed across by hand so loss,
tampering, NACK and PLI can be staged exactly."""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest

from callpipe.call.pipeline import (
    AUDIO_EXTENSIONS,
    VIDEO_EXTENSIONS,
    AudioReceivePipeline,
    AudioSendPipeline,
    VideoReceivePipeline,
    VideoSendPipeline,
    audio_level_dbov,
    frame_metadata,
)
from callpipe.call.stats import FreezeDetector, LatencyTracker, RateMeter, percentile
from callpipe.codecs.vp8 import EncodedFrame
from callpipe.e2ee.sframe import SFrameReceiver, SFrameSender
from callpipe.errors import ClosedError
from callpipe.jitter.video import VideoJitterConfig
from callpipe.media import AudioFrame, SyntheticAudioSource, SyntheticVideoSource, read_stamp
from callpipe.media.synthetic import read_audio_stamps
from callpipe.rtp import Nack, Pli, RtpPacket, parse_rtcp

W, H = 320, 240
KID = 4


class Clock:
    """Injected time, s."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class VideoLink:
    """A video sender and receiver sharing one key; packets cross only when delivered."""

    def __init__(self, jitter_buffer: VideoJitterConfig | None = None) -> None:
        key = os.urandom(16)
        self.clock = Clock()
        self.tx_key = SFrameSender()
        self.tx_key.add_key(KID, key)
        self.rx_key = SFrameReceiver()
        self.rx_key.add_key(KID, key)
        self.wire: list[bytes] = []  # everything the sender sent, in order
        self.rtcp: list[bytes] = []  # everything the receiver sent back
        self.encoded: list[EncodedFrame] = []
        self.tx = VideoSendPipeline(
            self.tx_key, self.wire.append, width=W, height=H, bitrate_kbps=300,
            clock=self.clock, on_encoded=self.encoded.append,
        )
        self.rx = VideoReceivePipeline(
            self.rx_key, self.rtcp.append, local_ssrc=0x1234, clock=self.clock,
            jitter_buffer=jitter_buffer,
        )
        self.source = SyntheticVideoSource(W, H)
        self.sent = 0  # wire packets already considered for delivery

    def send(self, n: int = 1) -> list[bytes]:
        """Send ``n`` frames (33 ms apart); returns their packets (not yet delivered)."""
        out: list[bytes] = []
        for _ in range(n):
            self.clock.t += 1 / 30
            self.tx.send_frame_sync(self.source.read())  # type: ignore[arg-type]
            out += self.wire[self.sent :]
            self.sent = len(self.wire)
        return out

    def deliver(self, packets: list[bytes]) -> list[int]:
        """Hand packets to the receiver, run its timers, decode; returns decoded frame
        numbers."""
        for p in packets:
            self.rx.on_packet(p)
        self.rx.poll()
        nums = []
        for f in self.rx.decode_ready():
            stamp = read_stamp(f)
            assert stamp is not None
            nums.append(stamp.frame_number)
        return nums

    def feedback(self) -> list[object]:
        """Give the receiver's RTCP to the sender; returns the parsed packets."""
        out: list[object] = []
        for data in self.rtcp:
            for p in parse_rtcp(data):
                out.append(p)
                self.tx.on_rtcp(p)
        self.rtcp.clear()
        return out

    def close(self) -> None:
        self.tx.close()
        self.rx.close()
        self.tx_key.close()
        self.rx_key.close()


@pytest.fixture
def link() -> VideoLink:
    lk = VideoLink()
    yield lk  # type: ignore[misc]
    lk.close()


# ---------------------------------------------------------------------------- helpers
def test_frame_metadata_is_canonical_and_distinguishes_fields() -> None:
    assert frame_metadata("video", 96, keyframe=True, temporal_id=2) == bytes(
        (1, ord("v"), 96, 1, 2)
    )
    assert frame_metadata("audio", 111) == bytes((1, ord("a"), 111, 0, 0))
    variants = {
        frame_metadata("video", 96),
        frame_metadata("video", 96, keyframe=True),
        frame_metadata("video", 96, temporal_id=1),
        frame_metadata("video", 97),
        frame_metadata("audio", 96),
    }
    assert len(variants) == 5
    for bad in (
        lambda: frame_metadata("text", 96),  # type: ignore[arg-type]
        lambda: frame_metadata("video", 128),
        lambda: frame_metadata("video", 96, temporal_id=8),
    ):
        with pytest.raises(ValueError):
            bad()


def test_audio_level_follows_rfc6464() -> None:
    square = np.full((960, 1), 32767, np.int16)
    square[::2] = -32767
    assert audio_level_dbov(square) == 0
    t = np.arange(960) / 48000
    sine = (0.1 * 32768 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)[:, None]
    assert audio_level_dbov(sine) == 23  # 20*log10(0.1/sqrt(2)) = -23.0 dBov
    assert audio_level_dbov(np.zeros((960, 1), np.int16)) == 127


def test_stats_helpers() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    lt = LatencyTracker(keep=3)
    for v in (100, 1, 2, 3):
        lt.add(v)
    assert lt.count == 4 and lt.p50 == 2.0  # the oldest sample fell out
    rm = RateMeter(1.0)
    for i in range(31):
        rm.add(i / 30, 1000)
    assert rm.rate(1.0) == pytest.approx(30, abs=1)
    assert rm.kbps(1.0) == pytest.approx(240, rel=0.05)
    fd = FreezeDetector()
    for i in range(10):
        fd.on_frame(i / 30)
    assert not fd.on_frame(10 / 30)
    assert fd.on_frame(10 / 30 + 0.5)  # 500 ms gap > avg + 150 ms
    assert fd.freeze_count == 1 and fd.total_freezes_duration == pytest.approx(0.5)


# ------------------------------------------------------------------------------- video
def test_video_round_trip_in_order_and_ciphertext_only(link: VideoLink) -> None:
    decoded: list[int] = []
    for _ in range(20):
        decoded += link.deliver(link.send())
    assert decoded == list(range(20))
    st = link.rx.stats()
    assert st.framesDecoded == 20 and st.keyFramesDecoded == 1 and st.framesDropped == 0
    assert st.framesReceived == 20 and st.packetsLost == 0
    assert st.frameWidth == W and st.frameHeight == H
    assert st.latencyMsP50 is not None and st.latencyMsP50 < 1000
    assert st.jitterBufferEmittedCount == 20

    # the wire carries the SFrame ciphertext only: no 16-byte run of any plaintext frame
    assert len(link.encoded) == 20 and link.encoded[0].keyframe
    wire = b"".join(link.wire)
    for ef in link.encoded:
        data = ef.data
        for off in range(0, len(data) - 16, max(16, len(data) // 8)):
            assert data[off : off + 16] not in wire
    # and the cleartext fields the SFU needs are there: keyframe flag and PictureID
    first = RtpPacket.parse(link.wire[0])
    fm = VIDEO_EXTENSIONS.read(first).frame_marking
    assert fm is not None and fm.independent and fm.start
    tx = link.tx.stats()
    assert tx.framesEncoded == 20 and tx.keyFramesEncoded == 1
    assert tx.packetsSent == len(link.wire)


def test_nack_is_answered_from_the_history(link: VideoLink) -> None:
    assert link.deliver(link.send(3)) == [0, 1, 2]
    frame3 = link.send()
    lost = frame3[0]
    assert link.deliver(frame3[1:]) == []  # incomplete (or waiting behind the gap)
    got = link.deliver(link.send())  # the next frame waits behind the gap
    link.clock.t += 0.02  # past the reordering allowance: the NACK goes out
    got += link.deliver([])
    assert got == []
    fb = link.feedback()
    nacks = [p for p in fb if isinstance(p, Nack)]
    assert nacks and RtpPacket.parse(lost).sequence_number in nacks[0].lost
    resent = link.wire[link.sent :]
    link.sent = len(link.wire)
    assert resent == [lost]  # the stored packet, byte for byte
    assert link.deliver(resent) == [3, 4]
    st = link.rx.stats()
    assert st.nackCount == 1 and st.retransmittedPacketsReceived == 1
    assert st.framesDropped == 0 and st.pliCount == 0
    assert link.tx.stats().retransmittedPacketsSent == 1


def test_unrecoverable_loss_triggers_pli_and_recovery(link: VideoLink) -> None:
    assert link.deliver(link.send(3)) == [0, 1, 2]
    lost = link.send()
    link.deliver(lost[1:])  # its first packet never arrives, not even when NACKed
    decoded = []
    for _ in range(8):  # the assembler gives the gap up; later frames cannot be decoded
        decoded += link.deliver(link.send())
        link.clock.t += 0.05
    assert decoded == []
    fb = link.feedback()
    assert any(isinstance(p, Pli) for p in fb)
    assert link.tx.stats().pliCount >= 1
    recovered = []
    for _ in range(3):
        recovered += link.deliver(link.send())
    assert recovered and recovered == list(range(recovered[0], recovered[0] + len(recovered)))
    assert link.encoded[-3].keyframe  # the PLI forced a keyframe, decoding resumed with it
    st = link.rx.stats()
    assert st.framesDropped >= 8 and st.pliCount >= 1 and st.keyFramesDecoded == 2


def test_disable_then_enable_resumes_with_a_keyframe(link: VideoLink) -> None:
    assert link.deliver(link.send(5)) == [0, 1, 2, 3, 4]
    link.tx.set_enabled(False)
    assert link.send(10) == []  # frames are read and dropped
    link.tx.set_enabled(True)
    pkts = link.send()
    assert link.encoded[-1].keyframe
    assert link.deliver(pkts) == [15]
    assert link.rx.stats().framesDropped == 0


def test_set_bitrate_in_place(link: VideoLink) -> None:
    link.tx.set_bitrate(150)
    assert link.tx.bitrate_kbps == 150 and link.tx.stats().targetBitrateKbps == 150
    assert link.deliver(link.send(2)) == [0, 1]


def test_tampered_frame_fails_authentication_and_stream_recovers(link: VideoLink) -> None:
    assert link.deliver(link.send(3)) == [0, 1, 2]
    pkts = link.send()
    bad = bytearray(pkts[-1])
    bad[-5] ^= 0x40  # inside the SFrame ciphertext/tag
    assert link.deliver(pkts[:-1] + [bytes(bad)]) == []
    assert link.rx.stats().sframeAuthFailures == 1
    assert link.deliver(link.send()) == []  # references the dropped frame: wait for a key
    assert any(isinstance(p, Pli) for p in link.feedback())
    assert link.deliver(link.send()) == [5]  # the keyframe the PLI asked for
    assert link.rx.stats().decodeErrors == 0  # nothing unauthentic reached the decoder


def test_cleartext_fields_are_bound_into_the_aad(link: VideoLink) -> None:
    assert link.deliver(link.send(2)) == [0, 1]
    pkts = link.send()
    relabelled = [p[:1] + bytes(((p[1] & 0x80) | 97,)) + p[2:] for p in pkts]  # PT 96 -> 97
    assert link.deliver(relabelled) == []
    assert link.rx.stats().sframeAuthFailures == 1


def test_garbage_and_foreign_packets_are_dropped(link: VideoLink) -> None:
    assert link.deliver(link.send()) == [0]
    link.rx.on_packet(b"\x00garbage")
    foreign = RtpPacket(96, 1, 1, 0xDEADBEEF, b"\x90\x80\x00x").serialize()
    link.rx.on_packet(foreign)
    assert link.deliver(link.send()) == [1]


def test_closed_pipelines_refuse_work(link: VideoLink) -> None:
    link.tx.close()
    link.tx.close()  # idempotent
    with pytest.raises(ClosedError):
        link.tx.encode(link.source.read())  # type: ignore[arg-type]
    link.rx.close()
    with pytest.raises(ClosedError):
        link.rx.on_packet(b"")


def test_async_send_and_receive_use_worker_threads() -> None:
    async def run() -> list[int]:
        lk = VideoLink()
        lk.rx.clock = None  # type: ignore[attr-defined]
        got: list[int] = []
        lk.rx.start()
        lk.tx.start()
        try:
            sent: list[bytes] = []
            for _ in range(10):
                lk.clock.t += 1 / 30
                await lk.tx.send_frame(lk.source.read())  # type: ignore[arg-type]
                for p in lk.wire[len(sent) :]:
                    lk.rx.on_packet(p)
                sent = list(lk.wire)
            frames = lk.rx.frames()
            while len(got) < 10:
                f = await asyncio.wait_for(frames.__anext__(), 5)
                stamp = read_stamp(f)
                assert stamp is not None
                got.append(stamp.frame_number)
        finally:
            await lk.tx.aclose()
            await lk.rx.aclose()
            lk.tx_key.close()
            lk.rx_key.close()
        return got

    assert asyncio.run(run()) == list(range(10))


# ------------------------------------------------------------------------------- audio
def test_audio_round_trip_with_level_stamps_and_a_tampered_packet() -> None:
    key = os.urandom(16)
    clock = Clock()
    with SFrameSender() as tx_key, SFrameReceiver() as rx_key:
        tx_key.add_key(KID, key)
        rx_key.add_key(KID, key)
        wire: list[bytes] = []
        opus: list[bytes] = []
        tx = AudioSendPipeline(tx_key, wire.append, clock=clock, on_encoded=opus.append)
        rx = AudioReceivePipeline(rx_key, lambda b: None, local_ssrc=7, clock=clock)
        src = SyntheticAudioSource(frames=100)  # 2 s of 20 ms frames
        out: list[AudioFrame] = []
        try:
            for i, frame in enumerate(src):
                assert tx.send_frame_sync(frame)
                pkt = wire[-1]
                if i == 50:  # tamper one packet in flight
                    b = bytearray(pkt)
                    b[-3] ^= 1
                    pkt = bytes(b)
                rx.on_packet(pkt)
                for _ in range(2):
                    out.append(rx.pull())
                    clock.t += 0.010
            st = rx.stats()
        finally:
            tx.close()
            rx.close()
    assert st.sframeAuthFailures == 1 and st.packetsReceived == 100
    # the dropped packet was rebuilt from the next one's in-band FEC, or concealed
    assert st.fecRecoveredFrames + st.concealmentEvents >= 1
    assert st.totalSamplesReceived > 0
    level = AUDIO_EXTENSIONS.read(RtpPacket.parse(wire[10])).audio_level
    assert level is not None and level.voice and 5 <= level.level <= 30
    words = [w.word_number for w in read_audio_stamps(out)]
    assert len(words) >= 15 and words == sorted(words)
    blob = b"".join(wire)
    assert not any(p[1:17] in blob for p in opus if len(p) > 17)  # only ciphertext on the wire


# ------------------------------------------------------- the adaptive video jitter buffer
class Timeline:
    """Drives a link with the adaptive buffer in real (injected) time: frames every 33 ms,
    each packet delivered after its own delay, the receiver's timers every 5 ms."""

    def __init__(self, link: VideoLink) -> None:
        self.link = link
        self.pending: list[tuple[float, int, bytes]] = []  # (arrival, order, packet)
        self.n = 0
        self.decoded: list[int] = []
        self.times: list[float] = []  # when each decoded frame came out, s

    def step(self, delay: float = 0.0, drop: set[int] | None = None,
             feedback: bool = True) -> None:
        """One frame interval; the frame's packets arrive ``delay`` s late (packets stay in
        order: a later frame may still overtake an earlier, delayed one)."""
        lk = self.link
        packets = lk.send()
        for i, p in enumerate(packets):
            if drop and i in drop:
                continue
            self.pending.append((lk.clock.t + delay + 0.0005 * i, self.n, p))
            self.n += 1
        end = lk.clock.t + 1 / 30
        t = lk.clock.t
        while t < end - 1e-9:
            self.pending.sort()
            while self.pending and self.pending[0][0] <= t:
                lk.rx.on_packet(self.pending.pop(0)[2])
            lk.rx.poll()
            for f in lk.rx.decode_ready():
                stamp = read_stamp(f)
                assert stamp is not None
                self.decoded.append(stamp.frame_number)
                self.times.append(t)
            if feedback:
                lk.feedback()
                resent = lk.wire[lk.sent:]
                lk.sent = len(lk.wire)
                for p in resent:  # retransmissions take 10 ms
                    self.pending.append((t + 0.010, self.n, p))
                    self.n += 1
            t += 0.005
            lk.clock.t = t
        lk.clock.t = end - 1 / 30  # send() adds the frame interval again


@pytest.fixture
def jb_link() -> VideoLink:
    lk = VideoLink(VideoJitterConfig(rtt_ms=20))
    yield lk  # type: ignore[misc]
    lk.close()


def test_adaptive_buffer_round_trip_in_order(jb_link: VideoLink) -> None:
    tl = Timeline(jb_link)
    for _ in range(60):
        tl.step()
    assert tl.decoded == list(range(len(tl.decoded))) and len(tl.decoded) >= 55
    st = jb_link.rx.stats()
    assert st.framesDropped == 0 and st.nackCount == 0 and st.pliCount == 0
    assert st.jitterBufferEmittedCount >= 55 and st.jitterBufferDelayMs < 100


def test_adaptive_buffer_waits_for_a_nack_and_shows_every_frame(jb_link: VideoLink) -> None:
    tl = Timeline(jb_link)
    for i in range(40):
        tl.step(drop={0} if i == 20 else None)
    # the frame behind the gap waited for its retransmission (so did the ones behind it): at
    # most a frame or two is decoded too late to be shown, none is lost, no keyframe needed
    assert tl.decoded == sorted(set(tl.decoded)) and len(tl.decoded) >= 37
    assert 20 in tl.decoded or 21 in tl.decoded
    st = jb_link.rx.stats()
    assert st.nackCount >= 1 and st.retransmittedPacketsReceived >= 1
    assert st.framesDropped <= 2 and st.pliCount == 0 and st.framesDecoded >= 37


def test_adaptive_buffer_absorbs_jitter_by_delaying_playout(jb_link: VideoLink) -> None:
    smooth = VideoLink(VideoJitterConfig(rtt_ms=20))
    try:
        calm = Timeline(smooth)
        for _ in range(90):
            calm.step()
        rough = Timeline(jb_link)
        rng = np.random.default_rng(3)
        for _ in range(90):  # each frame 0..80 ms late (network jitter)
            rough.step(delay=float(rng.uniform(0.0, 0.08)))
        assert rough.decoded == sorted(set(rough.decoded)) and len(rough.decoded) >= 80
        assert jb_link.rx.stats().framesDropped <= 10
        calm_ms = smooth.rx.stats().jitterBufferDelayMs
        rough_ms = jb_link.rx.stats().jitterBufferDelayMs
        assert rough_ms > calm_ms + 20  # the buffer grew to absorb the jitter
    finally:
        smooth.close()


def test_adaptive_buffer_plays_out_smoothly_where_the_fixed_path_stutters() -> None:
    """The same jittery arrivals (each frame 0..80 ms late) through both receive paths: the
    fixed path hands frames out as they complete, the adaptive one at their render times."""
    intervals = {}
    for name, cfg in (("adaptive", VideoJitterConfig(rtt_ms=20)), ("fixed", None)):
        lk = VideoLink(cfg)
        try:
            tl = Timeline(lk)
            rng = np.random.default_rng(3)
            for _ in range(150):
                tl.step(delay=float(rng.uniform(0.0, 0.08)))
            assert len(tl.decoded) >= 140
            intervals[name] = np.diff(tl.times[30:]) * 1000  # ms, after the first second
        finally:
            lk.close()
    print({k: (round(float(v.std()), 1), round(float(v.max()), 1)) for k, v in intervals.items()})
    assert intervals["adaptive"].std() < intervals["fixed"].std() / 3
    assert intervals["adaptive"].max() < intervals["fixed"].max()


def test_adaptive_buffer_unrecoverable_loss_asks_for_a_keyframe(jb_link: VideoLink) -> None:
    tl = Timeline(jb_link)
    for _ in range(10):
        tl.step()
    before = len(tl.decoded)
    tl.step(drop={0}, feedback=False)  # lost and never repaired
    for _ in range(40):
        tl.step(feedback=False)
        # only PLIs are answered: hand the RTCP over but not the retransmissions
        for p in jb_link.feedback():
            if isinstance(p, Nack):
                pass
        jb_link.sent = len(jb_link.wire)
    st = jb_link.rx.stats()
    assert st.pliCount >= 1 and jb_link.tx.stats().pliCount >= 1
    assert len(tl.decoded) > before + 10  # decoding resumed after the keyframe
    assert tl.decoded == sorted(tl.decoded)
