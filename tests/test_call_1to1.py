"""1:1 calls end to end: two :class:`Call` s in one process, real UDP on 127.0.0.1, real
codecs, real SFrame; the handshake over the SFU's signaling relay, an in-process channel, or the
media socket itself.  Loss, tampering and capture happen in the send callable of one side."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from callpipe.call import Call, CallConfig, LocalChannel, SignalingChannel
from callpipe.call.stats import percentile
from callpipe.errors import AuthenticationError
from callpipe.media import SyntheticAudioSource, SyntheticVideoSource, read_stamp
from callpipe.media.synthetic import monotonic_ms, read_audio_stamps
from callpipe.net.signaling import SignalingClient
from callpipe.rtp import is_rtcp
from callpipe.sfu.signaling import SignalingServer
from callpipe.sfu.token import issue_token

SECRET = b"0123456789abcdef-call-tests"
CFG = CallConfig(video_bitrate_kbps=300, handshake_timeout_s=5.0)


def _sources() -> dict[str, Any]:
    return {
        "video": SyntheticVideoSource(320, 240, fps=30, realtime=True),
        "audio": SyntheticAudioSource(48000, 1, frame_ms=20),
    }


@dataclass
class Received:
    """What one side got from the other: (frame number, loop time) and audio frames with the
    monotonic ms at which each was played out."""

    video: list[tuple[int, float]] = field(default_factory=list)
    unstamped: int = 0
    audio: list[Any] = field(default_factory=list)
    audio_ms: list[int] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self, call: Call) -> None:
        loop = asyncio.get_running_loop()

        async def video() -> None:
            async for f in call.remote_video():
                s = read_stamp(f)
                if s is None:
                    self.unstamped += 1
                else:
                    self.video.append((s.frame_number, loop.time()))

        async def audio() -> None:
            async for f in call.remote_audio():
                self.audio.append(f)
                self.audio_ms.append(monotonic_ms())

        self.tasks = [loop.create_task(video()), loop.create_task(audio())]

    async def join(self) -> None:
        await asyncio.wait_for(asyncio.gather(*self.tasks), 5)

    @property
    def numbers(self) -> list[int]:
        return [n for n, _ in self.video]


def _rtp_ssrc_seq(data: bytes) -> tuple[int, int] | None:
    if len(data) < 12 or data[0] >> 6 != 2 or is_rtcp(data):
        return None
    return int.from_bytes(data[8:12], "big"), int.from_bytes(data[2:4], "big")


async def _pair(
    wrapper_a: Callable[[Callable[[bytes], None]], Callable[[bytes], None]] | None = None,
    *,
    channels: tuple[Any, Any] | None = None,
    direct: bool = False,
) -> tuple[Call, Call]:
    ch = channels or ((None, None) if direct else LocalChannel.pair())
    a = Call(ch[0], role="caller", call_id=b"call-test", config=CFG, send_wrapper=wrapper_a,
             **_sources())
    b = Call(ch[1], role="callee", call_id=b"call-test", config=CFG, **_sources())
    await a.open()
    await b.open()
    if direct:
        await asyncio.gather(a.connect(remote=b.local_address), b.connect(remote=a.local_address))
    else:
        await asyncio.gather(a.start(), b.start())
    return a, b


def _in_order(numbers: list[int]) -> bool:
    return all(x < y for x, y in zip(numbers, numbers[1:], strict=False))


# ------------------------------------------------------------------------------------------
def test_call_over_sfu_signaling_emoji_media_both_ways_and_ciphertext_on_the_wire() -> None:
    wire: list[bytes] = []

    def capture(send: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def f(data: bytes) -> None:
            wire.append(data)
            send(data)

        return f

    async def run() -> dict[str, Any]:
        async with SignalingServer("127.0.0.1", 0, SECRET, ping_interval=None) as server:
            keys = [Ed25519PrivateKey.generate().public_key().public_bytes_raw() for _ in "ab"]
            sa = await SignalingClient.connect(
                server.url, issue_token(SECRET, "r1", "Alice"), keys[0], proxy=None
            )
            sb = await SignalingClient.connect(
                server.url, issue_token(SECRET, "r1", "Bob"), keys[1], proxy=None
            )
            chans = (SignalingChannel(sa, sb.participant_id),
                     SignalingChannel(sb, sa.participant_id))
            a = Call(chans[0], role="caller", call_id=b"r1:call", config=CFG,
                     send_wrapper=capture, **_sources())
            b = Call(chans[1], role="callee", call_id=b"r1:call", config=CFG, **_sources())
            await a.open()
            plain_video: list[bytes] = []
            plain_audio: list[bytes] = []
            assert a.video_send is not None and a.audio_send is not None
            a.video_send.on_encoded = lambda ef: plain_video.append(ef.data)
            a.audio_send.on_encoded = plain_audio.append
            await asyncio.gather(a.start(), b.start())
            got_a, got_b = Received(), Received()
            got_a.start(a)
            got_b.start(b)
            await asyncio.sleep(2.5)
            stats = {"a": a.stats(), "b": b.stats()}
            await a.close()
            await b.close()
            await got_a.join()
            await got_b.join()
            await sa.leave()
            await sb.leave()
            return {"stats": stats, "a": a, "b": b, "got_a": got_a, "got_b": got_b,
                    "plain_video": plain_video, "plain_audio": plain_audio}

    r = asyncio.run(run())
    a, b, stats = r["a"], r["b"], r["stats"]
    # the same 4 emoji, with names, on both sides
    assert len(a.emoji) == 4 and a.emoji == b.emoji
    assert a.emoji_names == b.emoji_names and len(a.emoji_names.split(", ")) == 4
    assert a.handshake_result.fingerprint == b.handshake_result.fingerprint
    # video both ways: frame numbers in order, >= 90 % of what was sent decoded
    for me, peer in (("a", "b"), ("b", "a")):
        got: Received = r[f"got_{me}"]
        sent = stats[peer]["videoSend"]["framesSent"]
        rx = stats[me]["videoReceive"]
        print(f"{me}: decoded {len(got.numbers)} of {sent} frames; latency p50 "
              f"{rx['latencyMsP50']} ms p95 {rx['latencyMsP95']} ms; "
              f"jitterBufferDelay {rx['jitterBufferDelayMs']:.2f} ms; fps "
              f"{rx['framesPerSecond']:.1f}; {rx['bitrateKbps']:.0f} kbps")
        assert sent >= 40
        assert got.unstamped == 0 and _in_order(got.numbers)
        assert rx["framesDecoded"] >= 0.9 * sent - 3
        assert len(got.numbers) >= 0.9 * sent - 3
        assert rx["latencyMsP50"] is not None and rx["latencyMsP50"] < 1000  # sanity only
        assert rx["sframeAuthFailures"] == 0 and rx["framesDropped"] <= 0.05 * sent
        # audio both ways: the stamp words come back in order
        words = read_audio_stamps(got.audio)
        numbers = [w.word_number for w in words]
        assert len(numbers) >= 10 and _in_order(numbers)
        lat = [got.audio_ms[w.pts // 480] - w.capture_ms for w in words
               if w.pts // 480 < len(got.audio_ms)]
        print(f"{me}: audio words {len(numbers)}, latency p50 {percentile(lat, 0.5)} ms")
        assert stats[me]["audioReceive"]["packetsReceived"] >= 100
        assert stats[me]["errors"] == []
    # the wire carries ciphertext only: no 16-byte run of any plaintext VP8 or Opus packet
    blob = b"".join(wire)
    assert len(r["plain_video"]) >= 40 and len(r["plain_audio"]) >= 100
    for data in r["plain_video"]:
        for off in range(0, len(data) - 16, max(16, len(data) // 8)):
            assert data[off : off + 16] not in blob
    for data in r["plain_audio"]:
        if len(data) > 17:
            assert data[1:17] not in blob
    # and media went peer to peer (the signaling server relayed only the handshake)
    assert stats["a"]["remote"] == b.local_address and stats["b"]["remote"] == a.local_address


def test_direct_call_video_and_audio_off_then_on() -> None:
    async def run() -> dict[str, Any]:
        a, b = await _pair(direct=True)
        loop = asyncio.get_running_loop()
        encoded: list[tuple[float, bool]] = []
        assert a.video_send is not None
        a.video_send.on_encoded = lambda ef: encoded.append((loop.time(), ef.keyframe))
        got = Received()
        got.start(b)
        await asyncio.sleep(1.0)
        a.set_video_enabled(False)
        a.set_audio_enabled(False)
        t_off = loop.time()
        await asyncio.sleep(0.3)
        assert b.audio_receive is not None
        audio_before = b.audio_receive.stats().packetsReceived
        await asyncio.sleep(0.7)
        audio_after = b.audio_receive.stats().packetsReceived
        a.set_video_enabled(True)
        a.set_audio_enabled(True)
        t_on = loop.time()
        await asyncio.sleep(1.0)
        stats = b.stats()
        await a.close()
        await b.close()
        await got.join()
        return {"got": got, "stats": stats, "t_off": t_off, "t_on": t_on, "encoded": encoded,
                "audio": (audio_before, audio_after)}

    r = asyncio.run(run())
    got: Received = r["got"]
    rx = r["stats"]["videoReceive"]
    assert _in_order(got.numbers)
    before = [(n, t) for n, t in got.video if t < r["t_off"] + 0.1]
    during = [(n, t) for n, t in got.video if r["t_off"] + 0.1 <= t < r["t_on"]]
    after = [(n, t) for n, t in got.video if t >= r["t_on"]]
    assert len(before) >= 20 and during == [] and len(after) >= 20
    assert after[0][0] - before[-1][0] >= 25  # ~1 s of frames were never sent
    # the first frame encoded after the resume is a keyframe, and it was decoded at once
    first_after = next(k for t, k in r["encoded"] if t >= r["t_on"])
    assert first_after
    assert rx["keyFramesDecoded"] == 2 and rx["framesDropped"] == 0
    assert after[0][1] - r["t_on"] < 0.5
    assert rx["freezeCount"] >= 1  # the pause shows up as a freeze (webrtc-stats rule)
    # audio stopped too, and came back
    assert r["audio"][0] == r["audio"][1]
    assert r["stats"]["audioReceive"]["packetsReceived"] > r["audio"][1] + 30


def test_loss_is_repaired_by_nack_and_unrecoverable_loss_by_pli() -> None:
    rng = random.Random(20240607)
    state: dict[str, Any] = {"arm": False, "blackhole": None, "newest": None,
                             "dropped": 0, "blackholed": 0, "video_ssrc": None}

    def lossy(send: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def f(data: bytes) -> None:
            ids = _rtp_ssrc_seq(data)
            if ids is not None:
                ssrc, seq = ids
                if ssrc == state["video_ssrc"]:
                    newest = state["newest"]
                    fresh = newest is None or (seq - newest) % 65536 < 32768
                    if fresh:
                        state["newest"] = seq
                        if state["arm"] and state["blackhole"] is None:
                            state["blackhole"] = seq
                    if seq == state["blackhole"]:  # this packet never gets through
                        state["blackholed"] += 1
                        return
                if rng.random() < 0.05:
                    state["dropped"] += 1
                    return
            send(data)

        return f

    async def run() -> dict[str, Any]:
        a, b = await _pair(lossy)
        assert a.video_send is not None
        state["video_ssrc"] = a.video_send.ssrc
        loop = asyncio.get_running_loop()
        keyframes: list[float] = []
        a.video_send.on_encoded = lambda ef: keyframes.append(loop.time()) if ef.keyframe else None
        got = Received()
        got.start(b)
        await asyncio.sleep(1.2)
        state["arm"] = True
        t_arm = loop.time()
        await asyncio.sleep(1.6)
        stats = {"a": a.stats(), "b": b.stats()}
        await a.close()
        await b.close()
        await got.join()
        return {"got": got, "stats": stats, "t_arm": t_arm, "keyframes": keyframes}

    r = asyncio.run(run())
    got: Received = r["got"]
    rx = r["stats"]["b"]["videoReceive"]
    tx = r["stats"]["a"]["videoSend"]
    print(f"dropped {state['dropped']} packets at random, blackholed seq {state['blackhole']} "
          f"{state['blackholed']} times; receiver {rx['nackCount']} NACKs, "
          f"{rx['retransmittedPacketsReceived']} retransmissions, {rx['pliCount']} PLIs, "
          f"{rx['framesDecoded']} frames decoded, {rx['framesDropped']} dropped")
    assert state["dropped"] > 0 and state["blackholed"] >= 2  # first send + NACKed resends
    assert rx["nackCount"] > 0 and rx["retransmittedPacketsReceived"] > 0
    assert tx["retransmittedPacketsSent"] > 0
    assert rx["pliCount"] >= 1 and tx["pliCount"] >= 1
    # a keyframe was sent after the unrecoverable loss, and decoding went on after it
    assert any(t > r["t_arm"] for t in r["keyframes"])
    assert rx["keyFramesDecoded"] >= 2
    assert _in_order(got.numbers)
    assert sum(1 for _, t in got.video if t > r["t_arm"] + 0.6) >= 15
    assert rx["framesDecoded"] >= 0.6 * tx["framesSent"]
    assert rx["sframeAuthFailures"] == 0 and rx["decodeErrors"] == 0


def test_tampered_packets_fail_authentication_and_the_stream_goes_on() -> None:
    counter = {"video": 0, "audio": 0, "tampered_video": 0, "tampered_audio": 0}
    ssrcs: dict[int, str] = {}

    def tamper(send: Callable[[bytes], None]) -> Callable[[bytes], None]:
        def f(data: bytes) -> None:
            ids = _rtp_ssrc_seq(data)
            kind = ssrcs.get(ids[0]) if ids is not None else None
            if kind is not None:
                counter[kind] += 1
                if counter[kind] % 40 == 20:
                    b = bytearray(data)
                    b[-2] ^= 0x10  # in the SFrame tag
                    data = bytes(b)
                    counter[f"tampered_{kind}"] += 1
            send(data)

        return f

    async def run() -> dict[str, Any]:
        a, b = await _pair(tamper)
        assert a.video_send is not None and a.audio_send is not None
        ssrcs[a.video_send.ssrc] = "video"
        ssrcs[a.audio_send.ssrc] = "audio"
        loop = asyncio.get_running_loop()
        got = Received()
        got.start(b)
        await asyncio.sleep(2.5)
        stats = b.stats()
        await a.close()
        await b.close()
        await got.join()
        return {"got": got, "stats": stats, "end": loop.time()}

    r = asyncio.run(run())
    got: Received = r["got"]
    v, au = r["stats"]["videoReceive"], r["stats"]["audioReceive"]
    print(f"tampered {counter['tampered_video']} video / {counter['tampered_audio']} audio "
          f"packets; auth failures {v['sframeAuthFailures']} / {au['sframeAuthFailures']}; "
          f"video decoded {v['framesDecoded']}, dropped {v['framesDropped']}, "
          f"PLIs {v['pliCount']}")
    assert counter["tampered_video"] >= 2 and counter["tampered_audio"] >= 2
    # a tampered packet in a frame that was already being dropped (waiting for the keyframe
    # after an earlier failure) is never decrypted: at most one failure per tampered packet
    assert 1 <= v["sframeAuthFailures"] <= counter["tampered_video"]
    assert au["sframeAuthFailures"] == counter["tampered_audio"]
    assert v["decodeErrors"] == 0 and v["pliCount"] >= 1
    assert _in_order(got.numbers) and got.unstamped == 0
    assert sum(1 for _, t in got.video if t > r["end"] - 0.7) >= 10  # still flowing at the end
    # audio keeps playing (the words survive FEC/concealment, though time-stretching under
    # CPU load may garble some)
    words = [w.word_number for w in read_audio_stamps(got.audio)]
    assert len(words) >= 3 and _in_order(words)
    assert au["jitterBuffer"]["packetsPlayed"] >= 100


def test_handshake_with_a_changed_reveal_fails_authentication() -> None:
    class Mitm:
        """Passes messages on, flipping one byte of the caller's share in the REVEAL."""

        def __init__(self, inner: LocalChannel) -> None:
            self.inner = inner
            self.sent = 0

        async def send(self, message: bytes) -> None:
            self.sent += 1
            if self.sent == 2:  # OFFER, then REVEAL
                m = bytearray(message)
                m[-40] ^= 1
                message = bytes(m)
            await self.inner.send(message)

        async def receive(self) -> bytes:
            return await self.inner.receive()

    async def run() -> tuple[Any, Any]:
        ca, cb = LocalChannel.pair()
        cfg = CallConfig(handshake_timeout_s=1.0)
        a = Call(Mitm(ca), role="caller", call_id=b"x", config=cfg)
        b = Call(cb, role="callee", call_id=b"x", config=cfg)
        res = await asyncio.gather(a.start(), b.start(), return_exceptions=True)
        return res[0], res[1]

    ra, rb = asyncio.run(run())
    assert isinstance(rb, AuthenticationError)
    assert isinstance(ra, TimeoutError)  # the callee never says READY


@pytest.mark.parametrize("role", ["host", "nobody"])
def test_bad_arguments(role: str) -> None:
    with pytest.raises(ValueError):
        Call(None, role=role, call_id=b"x")  # type: ignore[arg-type]
