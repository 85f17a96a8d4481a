"""The video jitter buffer on injected-time timelines of real VP8 RTP packets."""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from callpipe.codecs import Vp8Decoder, Vp8Encoder
from callpipe.errors import CallpipeError, ClosedError
from callpipe.jitter.video import (
    WEBRTC_VIDEO_STATS,
    FrameRef,
    FreezeDetector,
    VideoJitterBuffer,
    VideoJitterConfig,
    VideoOutputFrame,
    Vp8ReferenceModel,
)
from callpipe.media.synthetic import SyntheticVideoSource
from callpipe.rtp.vp8 import Vp8Packetizer

W, H, FPS = 160, 96, 30.0
FRAME_MS = 1000.0 / FPS


@dataclass
class Sent:
    """One encoded frame as RTP packets."""

    index: int
    capture_ms: float
    temporal_id: int
    keyframe: bool
    timestamp: int
    packets: list[bytes]


@functools.lru_cache(maxsize=8)
def _encode(frames: int, layers: int, keyframes_at: tuple[int, ...]) -> tuple[tuple[bytes, bool,
                                                                                   int], ...]:
    src = SyntheticVideoSource(W, H, FPS)
    out = []
    with Vp8Encoder(W, H, 250, int(FPS), temporal_layers=layers, keyframe_interval=0) as enc:
        for n in range(frames):
            for e in enc.encode(src.render(n, capture_ms=int(n * FRAME_MS)),
                                keyframe=n in keyframes_at):
                out.append((e.data, e.keyframe, e.temporal_id))
    assert len(out) == frames  # no rate-control drops at this size and rate
    return tuple(out)


def stream(frames: int = 60, layers: int = 1, keyframes_at: tuple[int, ...] = (), *,
           ssrc: int = 0x1111, seq: int = 65500, pid: int = 32700, ts0: int = 2**32 - 6000,
           mtu: int = 300, start_ms: float = 0.0) -> list[Sent]:
    """Real VP8 frames packetized with small packets (several per frame), numbering that wraps
    (sequence, PictureID and timestamp)."""
    pk = Vp8Packetizer(ssrc=ssrc, mtu=mtu, sequence_number=seq, picture_id=pid,
                       temporal_layers=layers > 1, timestamp_offset=0)
    out = []
    for n, (data, key, tid) in enumerate(_encode(frames, layers, keyframes_at)):
        ts = (ts0 + int(round(n * 90000 / FPS))) % 2**32
        out.append(Sent(n, start_ms + n * FRAME_MS, tid, key, ts,
                        pk.packetize(data, ts, keyframe=key, temporal_id=tid)))
    return out


@dataclass
class Result:
    emitted: list[VideoOutputFrame] = field(default_factory=list)
    nacks: list[tuple[float, tuple[int, ...]]] = field(default_factory=list)
    plis: list[float] = field(default_factory=list)

    @property
    def shown(self) -> list[VideoOutputFrame]:
        return [f for f in self.emitted if f.render]


def seq_of(pkt: bytes) -> int:
    return (pkt[2] << 8) | pkt[3]


def drive(buf: VideoJitterBuffer, arrivals: list[tuple[float, bytes]], end_ms: float,
          retransmit: Callable[[float, int], float | None] | None = None,
          sent: list[Sent] | None = None) -> Result:
    """Insert packets at their arrival times and pull every tick; ``retransmit(now, seq)``
    answers a NACK with the arrival time of the retransmission (or None) of a packet of
    ``sent``."""
    heap = [(t, i, p) for i, (t, p) in enumerate(arrivals)]
    heapq.heapify(heap)
    by_seq = {seq_of(p): p for f in sent or [] for p in f.packets}
    res = Result()
    order = len(heap)
    now = 0.0
    while now <= end_ms:
        while heap and heap[0][0] <= now:
            t, _i, p = heapq.heappop(heap)
            buf.insert_rtp(p, t)
        res.emitted.extend(buf.pull(now))
        for t, seqs in buf.take_nacks():
            res.nacks.append((t, seqs))
            for s in seqs:
                at = retransmit(t, s) if retransmit else None
                if at is not None and s in by_seq:
                    order += 1
                    heapq.heappush(heap, (at, order, by_seq[s]))
        res.plis.extend(buf.take_keyframe_requests())
        now += buf.tick_ms
    return res


def arrivals_of(frames: list[Sent], delay_ms: float = 40.0,
                drop: Callable[[Sent, int], bool] = lambda f, j: False
                ) -> list[tuple[float, bytes]]:
    out = []
    for f in frames:
        for j, p in enumerate(f.packets):
            if not drop(f, j):
                out.append((f.capture_ms + delay_ms + 0.2 * j + (f.index % 3), p))
    return out


def index_of(frames: list[Sent]) -> dict[int, int]:
    return {f.timestamp: f.index for f in frames}


def decode_all(res: Result) -> Vp8Decoder:
    dec = Vp8Decoder()
    for f in res.emitted:
        dec.decode(f.data)
    return dec


# -- timelines --------------------------------------------------------------------------------
def test_in_order_every_frame_shown_in_order_and_decodes() -> None:
    frames = stream(60, layers=3)
    with VideoJitterBuffer() as buf:
        res = drive(buf, arrivals_of(frames), 60 * FRAME_MS + 500)
        idx = index_of(frames)
        assert [idx[f.timestamp] for f in res.shown] == list(range(60))
        renders = [f.render_ms for f in res.shown]
        assert renders == sorted(renders)
        dec = decode_all(res)
        assert dec.errors == 0 and dec.frames_decoded == 60
        st = buf.stats()
        assert (st.framesDropped, st.framesLost, st.pliCount, st.packetsLost) == (0, 0, 0, 0)
        assert st.jitterBufferEmittedCount == st.framesRendered == 60
        assert st.freezeCount == 0 and st.keyFramesDecoded == 1
        assert 0 < st.meanJitterBufferDelayMs < 200 and st.meanTargetDelayMs > 0
        report = buf.report()
        for k in WEBRTC_VIDEO_STATS:
            assert k in report, k
        # decoding starts decode + render time before the frame is shown
        assert all(f.render_ms - f.decode_ms >= 15.0 - 1e-9 for f in res.shown)
        assert buf.take_playouts()  # the protocol's view of the same frames


def test_reordering_and_duplicates() -> None:
    frames = stream(45, layers=3)
    arr = []
    for k, (t, p) in enumerate(arrivals_of(frames)):
        t2 = t + 12.0 if k % 7 == 3 else t  # every 7th packet overtaken
        arr.append((t2, p))
        arr.append((t2 + 2.0, p))  # and every packet twice
    with VideoJitterBuffer() as buf:
        res = drive(buf, arr, 45 * FRAME_MS + 500)
        st = buf.stats()
        n = sum(len(f.packets) for f in frames)
        assert len(res.shown) == 45
        assert st.packetsDuplicated == n and st.packetsReceived == n
        assert st.packetsDiscarded == 0 and st.framesDropped == 0 and st.pliCount == 0
        assert decode_all(res).errors == 0


def test_loss_recovered_by_nack_in_time() -> None:
    frames = stream(60, layers=1)
    victim = frames[20].packets[1]
    arr = arrivals_of(frames, drop=lambda f, j: f.index == 20 and j == 1)
    # 150 ms of playout delay leave room for one 60 ms round trip
    with VideoJitterBuffer(VideoJitterConfig(min_playout_delay_ms=150)) as buf:
        buf.set_rtt(60.0)
        res = drive(buf, arr, 60 * FRAME_MS + 500, retransmit=lambda t, s: t + 60.0,
                    sent=frames)
        st = buf.stats()
        assert any(seq_of(victim) in seqs for _t, seqs in res.nacks)
        first_nack = min(t for t, seqs in res.nacks if seq_of(victim) in seqs)
        # the gap shows when the next packet lands; the NACK follows the 10 ms reorder wait
        assert first_nack - (frames[20].capture_ms + 40.0) < 30.0
        assert len(res.shown) == 60 and st.framesDropped == 0 and st.pliCount == 0
        assert st.retransmittedPacketsReceived == 1 and st.packetsLost == 0
        assert st.nackCount >= 1
        assert decode_all(res).errors == 0


def test_unrecovered_loss_skips_to_the_keyframe_with_pli() -> None:
    frames = stream(90, layers=1, keyframes_at=(60,))
    arr = arrivals_of(frames, drop=lambda f, j: f.index == 20 and j == 1)
    with VideoJitterBuffer() as buf:
        res = drive(buf, arr, 90 * FRAME_MS + 500)  # NACKs are never answered
        st = buf.stats()
        idx = index_of(frames)
        shown = [idx[f.timestamp] for f in res.shown]
        assert shown == list(range(20)) + list(range(60, 90))  # never stalls after the loss
        assert st.pliCount >= 2 and res.plis  # repeated while waiting for the keyframe
        assert res.plis[0] < frames[21].capture_ms + 40.0 + buf.config.max_gap_wait_ms
        assert st.framesDropped == 40  # frame 20 (incomplete) and 21..59 (no reference)
        assert st.gapsSkipped >= 1 and st.keyFramesDecoded == 2
        dec = decode_all(res)  # nothing undecodable was emitted
        assert dec.errors == 0 and not dec.needs_keyframe
        assert st.freezeCount == 1  # 20 -> 60 is one long freeze
        assert st.totalFreezesDuration == pytest.approx(41 * FRAME_MS / 1000.0, abs=0.05)


def _tl_run(drop_index: int | None) -> tuple[Result, VideoJitterBuffer, list[Sent]]:
    frames = stream(80, layers=3)
    arr = arrivals_of(frames, drop=lambda f, j: f.index == drop_index)
    buf = VideoJitterBuffer()
    res = drive(buf, arr, 80 * FRAME_MS + 500)  # no retransmission
    return res, buf, frames


def test_lost_second_tl2_frame_costs_nothing_else() -> None:
    ref, ref_buf, frames = _tl_run(None)
    res, buf, _ = _tl_run(23)  # 23 % 4 == 3: the second TL2 frame of its group
    assert frames[23].temporal_id == 2
    st = buf.stats()
    idx = index_of(frames)
    assert [idx[f.timestamp] for f in res.shown] == [i for i in range(80) if i != 23]
    assert (st.pliCount, st.framesDropped, st.framesLost, st.freezeCount) == (0, 0, 1, 0)
    # the TL0 frame behind the hole is not held back: shown when it would have been anyway
    r0 = {f.timestamp: f.render_ms for f in ref.shown}
    r1 = {f.timestamp: f.render_ms for f in res.shown}
    assert r1[frames[24].timestamp] == pytest.approx(r0[frames[24].timestamp], abs=1.0)
    assert decode_all(res).errors == 0
    ref_buf.close()
    buf.close()


def test_lost_first_tl2_frame_drops_only_the_frame_that_reads_it() -> None:
    res, buf, frames = _tl_run(21)  # the first TL2 frame writes ALTREF; frame 23 reads it
    st = buf.stats()
    idx = index_of(frames)
    assert [idx[f.timestamp] for f in res.shown] == [i for i in range(80) if i not in (21, 23)]
    assert (st.pliCount, st.framesDropped, st.framesLost) == (0, 1, 1)
    assert decode_all(res).errors == 0
    buf.close()


def test_lost_tl1_frame_asks_for_a_keyframe_and_base_layer_plays_on() -> None:
    res, buf, frames = _tl_run(22)
    st = buf.stats()
    idx = index_of(frames)
    shown = [idx[f.timestamp] for f in res.shown]
    assert st.pliCount >= 1
    assert [i for i in range(24, 80) if i % 4 == 0] == [i for i in shown if i >= 24]
    assert st.freezeCount == 0  # 7.5 fps of base layer is not a freeze
    assert decode_all(res).errors == 0
    buf.close()


@pytest.mark.parametrize("same_ssrc", [False, True])
def test_sender_restart(same_ssrc: bool) -> None:
    a = stream(30, layers=1)
    b = stream(30, layers=1, ssrc=0x1111 if same_ssrc else 0x2222, seq=1234, pid=77,
               ts0=123456789, start_ms=30 * FRAME_MS)
    arr = arrivals_of(a) + arrivals_of(b)
    with VideoJitterBuffer() as buf:
        res = drive(buf, arr, 60 * FRAME_MS + 500)
        st = buf.stats()
        assert st.senderRestarts == 1
        assert len(res.shown) == 60 and st.framesDropped == 0
        idx_b = index_of(b)
        assert [idx_b[f.timestamp] for f in res.shown[30:]] == list(range(30))


def test_garbage_closed_and_bad_arguments() -> None:
    frames = stream(10, layers=1)
    buf = VideoJitterBuffer()
    assert buf.insert_rtp(b"\x00\x01", 0.0) == "invalid"
    assert buf.insert_rtp(bytes([0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1]), 0.0) == "invalid"
    with pytest.raises(TypeError):
        buf.insert_rtp("not bytes", 0.0)  # type: ignore[arg-type]
    res = drive(buf, arrivals_of(frames), 10 * FRAME_MS + 400)
    assert len(res.shown) == 10 and buf.stats().packetsInvalid == 2
    buf.close()
    buf.close()
    with pytest.raises(ClosedError):
        buf.pull(1000.0)
    with pytest.raises(CallpipeError, match="gap_wait_rtts"):
        VideoJitterConfig().with_params({"gap_wait_rtts": "lots"})
    with pytest.raises(CallpipeError, match="unknown"):
        VideoJitterConfig().with_params({"nope": 1})
    with pytest.raises(CallpipeError, match="max_playout_delay_ms"):
        VideoJitterBuffer(VideoJitterConfig(min_playout_delay_ms=500, max_playout_delay_ms=100))
    with pytest.raises(ValueError):
        VideoJitterBuffer().set_rtt(0)


def test_min_playout_delay_holds_frames_back() -> None:
    frames = stream(30, layers=1)
    cfg = VideoJitterConfig(min_playout_delay_ms=250)
    with VideoJitterBuffer(cfg) as buf:
        res = drive(buf, arrivals_of(frames), 30 * FRAME_MS + 800)
        later = res.shown[10:]
        idx = index_of(frames)
        # expected arrival (~40 ms after capture) + 250 ms
        assert all(f.render_ms - frames[idx[f.timestamp]].capture_ms >= 280 for f in later)


# -- pieces -----------------------------------------------------------------------------------
def test_freeze_detector_follows_the_definition() -> None:
    fd = FreezeDetector()
    t = 0.0
    for _ in range(5):  # four gaps: too few to judge
        fd.on_render(t)
        t += 33.0
    assert not fd.on_render(t + 400)  # the 5th gap, but only 4 known before it
    t += 400
    for _ in range(30):
        t += 33.0
        fd.on_render(t)
    # avg 33 ms: a freeze needs >= max(99, 183) ms
    assert not fd.on_render(t + 170)
    t += 170
    for _ in range(30):
        t += 33.0
        fd.on_render(t)
    assert fd.on_render(t + 190)
    assert fd.freeze_count == 1 and fd.total_freezes_ms == pytest.approx(190)
    # at 5 fps (avg 200 ms) a freeze needs 600 ms
    slow = FreezeDetector()
    for i in range(40):
        slow.on_render(i * 200.0)
    assert not slow.on_render(39 * 200.0 + 550)
    assert slow.on_render(39 * 200.0 + 550 + 700)  # avg now (29 x 200 + 550) / 30


def _ref(pid: int, tl0: int, tid: int, key: bool = False) -> FrameRef:
    return FrameRef(pid, tl0, tid, key)


def test_reference_model_three_layers() -> None:
    pattern = [0, 2, 1, 2]
    m = Vp8ReferenceModel()
    assert m.decide(_ref(0, 0, 0, True)) == (True, False)
    pid, tl0 = 1, 0
    for i in range(1, 8):  # a clean run of two groups
        tid = pattern[i % 4]
        tl0 += tid == 0
        assert m.decide(_ref(pid, tl0, tid)) == (True, False)
        pid += 1
    # group at tl0 = 2: TL0 (pid 8), TL2a lost (pid 9), TL1 (10), TL2b (11)
    assert m.decide(_ref(8, 2, 0)) == (True, False)
    assert m.decide(_ref(10, 2, 1)) == (True, False)
    assert m.decide(_ref(11, 2, 2)) == (False, False)  # reads ALTREF: gone, no keyframe needed
    assert m.frames_missing == 1
    assert m.decide(_ref(12, 3, 0)) == (True, False)
    assert m.decide(_ref(13, 3, 2)) == (True, False)  # rewrites ALTREF
    # the TL1 frame is lost: GOLDEN is gone for good
    assert m.decide(_ref(15, 3, 2)) == (False, True)
    assert m.decide(_ref(16, 4, 0)) == (True, False)  # the base layer plays on
    assert m.decide(_ref(17, 4, 2)) == (False, True)
    assert m.decide(_ref(18, 4, 1)) == (False, True)
    assert m.decide(_ref(19, 5, 0, True)) == (True, False)  # a keyframe heals everything
    assert m.decide(_ref(20, 5, 2)) == (True, False)
    assert m.decide(_ref(21, 5, 1)) == (True, False)
    assert m.decide(_ref(22, 5, 2)) == (True, False)
    # the TL0 frame of group 6 (pid 23) is lost: nothing decodes until a keyframe
    assert m.decide(_ref(24, 6, 2)) == (False, True)
    assert m.decide(_ref(25, 6, 1)) == (False, True)
    assert m.decide(_ref(27, 7, 0)) == (False, True)
    assert m.decide(_ref(28, 8, 0, True)) == (True, False)
    assert m.would_decode(_ref(29, 8, 2)) and m.would_decode(_ref(29, 8, 2))  # no side effect
    assert m.decide(_ref(29, 8, 2)) == (True, False)


def test_reference_model_one_and_two_layers() -> None:
    one = Vp8ReferenceModel()
    assert one.decide(FrameRef(0, None, None, True)) == (True, False)
    assert one.decide(FrameRef(1, None, None, False)) == (True, False)
    assert one.decide(FrameRef(3, None, None, False)) == (False, True)  # pid 2 missing
    assert one.decide(FrameRef(4, None, None, False)) == (False, True)
    assert one.decide(FrameRef(5, None, None, True)) == (True, False)
    two = Vp8ReferenceModel(2)
    assert two.decide(_ref(0, 0, 0, True)) == (True, False)
    assert two.decide(_ref(1, 0, 1)) == (True, False)
    assert two.decide(_ref(3, 1, 1)) == (False, True)  # TL0 of group 1 lost
    assert two.decide(_ref(4, 2, 0, True)) == (True, False)
    assert two.decide(_ref(6, 3, 0)) == (True, False)  # a TL1 frame lost: base still fine
    assert two.decide(_ref(7, 3, 1)) == (False, True)  # but TL1 reads GOLDEN
