"""Group calls end to end: a real `callpipe sfu` process, real GroupCall clients on loopback.

Clients run in this process (each with its own sockets, pipelines and worker threads) unless a
test needs one to die: then it is a separate Python process killed with SIGKILL.  Media is real
VP8 and Opus from the synthetic sources, encrypted with SFrame under the group's keys.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from sfuproc import SfuProcess

from callpipe.call.group import (
    CallEnded,
    EmojiChanged,
    GroupCall,
    GroupCallConfig,
    Reconnected,
    Reconnecting,
)
from callpipe.e2ee.sframe import decode_header
from callpipe.errors import CryptoError
from callpipe.media import SyntheticAudioSource, SyntheticVideoSource
from callpipe.net.signaling import SignalingClient
from callpipe.net.udp import MediaTransport
from callpipe.netsim.models import NetworkModel
from callpipe.netsim.proxy import UdpImpairmentProxy
from callpipe.rtp.packet import RtpPacket
from callpipe.sfu import issue_token

SECRET = "group-call-e2e-secret-0123456789"
CONFIG = GroupCallConfig(width=160, height=96, video_bitrate_kbps=250, rejoin_grace_s=1.5)


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sfu(port: int | None = None, media_port: int | None = None) -> SfuProcess:
    """A server on fixed ports (so that a restart comes back at the same URL)."""
    return SfuProcess(
        secret=SECRET,
        port=port or free_port(socket.SOCK_STREAM),
        media_port=media_port or free_port(socket.SOCK_DGRAM),
    )


@pytest.fixture
def sfu() -> Iterator[SfuProcess]:
    server = start_sfu()
    yield server
    _, err = server.stop()
    assert "Traceback" not in err, err


def call(sfu: SfuProcess, name: str, room: str = "e2e", **kw: Any) -> GroupCall:
    return GroupCall(
        sfu.url, room, token=issue_token(SECRET, room, name), name=name,
        video=SyntheticVideoSource(160, 96, fps=30, realtime=True),
        audio=SyntheticAudioSource(), config=kw.pop("config", CONFIG), **kw,
    )  # fmt: skip


async def until(what: str, cond: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


def decoded(c: GroupCall, other: GroupCall) -> int:
    """Video frames ``c`` decoded from ``other``."""
    r = c.stats()["received"].get(other.participant_id)
    return 0 if r is None or r["video"] is None else int(r["video"]["framesDecoded"])


def everyone_sees_everyone(calls: list[GroupCall], frames: int = 5) -> Callable[[], bool]:
    return lambda: all(decoded(a, b) >= frames for a in calls for b in calls if a is not b)


def same_emoji(calls: list[GroupCall]) -> Callable[[], bool]:
    def check() -> bool:
        texts = {c.emoji_text for c in calls}
        heights = {c.session.emoji_height for c in calls}
        return len(texts) == 1 and None not in texts and len(heights) == 1
    return check


def run(coro: Awaitable[None], timeout: float = 90) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


def test_join_leave_rekey_and_video_toggle(sfu: SfuProcess) -> None:
    async def scenario() -> None:
        a, b, c = call(sfu, "alice"), call(sfu, "bob"), call(sfu, "carol")
        events: list[Any] = []

        async def collect() -> None:
            async for ev in a.events():
                events.append(ev)

        collector = asyncio.create_task(collect())
        for x in (a, b, c):
            await x.join()
        trio = [a, b, c]
        await until("three see each other", everyone_sees_everyone(trio))
        await until("three agree on emoji", same_emoji(trio))
        first = a.emoji_text
        height = a.roster_height
        assert height == 2 and all(x.roster_height == 2 for x in trio)
        assert all(len(x.emoji or []) == 4 for x in trio)
        stats = a.stats()
        assert stats["received"][b.participant_id]["video"]["latencyMsP50"] is not None
        if sys.platform.startswith("linux"):  # arrival times from the kernel, not the loop
            assert stats["transport"]["kernelTimestamps"] is True
        assert stats["session"]["framesFromWrongSender"] == 0

        # carol leaves: a new roster block, a new key, new emoji; the others keep seeing each other
        kid_before = a.session.send_kid
        await c.leave()
        duo = [a, b]
        await until("carol removed", lambda: all(x.roster_height == 3 for x in duo))
        await until("new emoji agreed", same_emoji(duo))
        assert a.emoji_text != first
        await until("a switched its send key", lambda: a.session.send_kid != kid_before)
        n = decoded(b, a)
        await until("b decodes a after the rekey", lambda: decoded(b, a) >= n + 15)
        assert c.participant_id not in a.participants

        # dave joins mid-call: another block, emoji again shared by all three
        d = call(sfu, "dave")
        await d.join()
        trio = [a, b, d]
        await until("dave sees and is seen", everyone_sees_everyone(trio))
        await until("emoji with dave", same_emoji(trio))
        assert a.roster_height == 4

        # video off at a: b stops getting a's frames, audio continues; on again: a keyframe
        a.set_video_enabled(False)
        await asyncio.sleep(0.5)
        frozen = decoded(b, a)
        audio0 = b.stats()["received"][a.participant_id]["audio"]["packetsReceived"]
        await asyncio.sleep(1.0)
        assert decoded(b, a) <= frozen + 1
        assert b.stats()["received"][a.participant_id]["audio"]["packetsReceived"] > audio0 + 20
        keys = b.stats()["received"][a.participant_id]["video"]["keyFramesDecoded"]
        a.set_video_enabled(True)
        await until("video resumes", lambda: decoded(b, a) >= frozen + 10)
        assert b.stats()["received"][a.participant_id]["video"]["keyFramesDecoded"] > keys

        for x in (a, b, d):
            assert not x.stats()["errors"], x.stats()["errors"]
            await x.leave()
        await collector
        assert isinstance(events[-1], CallEnded)
        assert sum(isinstance(e, EmojiChanged) for e in events) >= 3

    run(scenario())


PARTICIPANT = textwrap.dedent(
    """
    import asyncio, sys
    from callpipe.call.group import GroupCall, GroupCallConfig
    from callpipe.media import SyntheticAudioSource, SyntheticVideoSource
    url, token = sys.argv[1], sys.argv[2]
    async def main():
        call = GroupCall(url, "e2e", token=token,
                         video=SyntheticVideoSource(160, 96, realtime=True),
                         audio=SyntheticAudioSource(),
                         config=GroupCallConfig(width=160, height=96, video_bitrate_kbps=250))
        await call.join()
        print("joined", call.participant_id, flush=True)
        await asyncio.sleep(120)
    asyncio.run(main())
    """
)


def test_a_crashed_participant_is_removed_and_the_call_goes_on(sfu: SfuProcess) -> None:
    async def scenario() -> None:
        a, b = call(sfu, "alice"), call(sfu, "bob")
        await a.join()
        await b.join()
        proc = subprocess.Popen(
            [sys.executable, "-c", PARTICIPANT, sfu.url, issue_token(SECRET, "e2e", "crash")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            await until("the third participant is in the roster",
                        lambda: a.roster_height == 2 and b.roster_height == 2, 30)
            crash_id = next(p.id for p in a.participants.values() if p.name == "crash")
            await until("its video arrives", lambda: any(
                (a.stats()["received"].get(crash_id) or {}).get("video", {}).get("framesDecoded", 0)
                > 5 for _ in [0]))
            await until("emoji agreed with it", same_emoji([a, b]))
            before = a.emoji_text
        finally:
            proc.kill()
            proc.communicate(timeout=10)
        t0 = time.monotonic()
        await until("the crashed member is removed", lambda: a.roster_height == 3, 15)
        removed_after = time.monotonic() - t0
        assert removed_after >= 1.0  # it was given the rejoin grace period (1.5 s) first
        await until("new emoji", same_emoji([a, b]))
        assert a.emoji_text != before
        n = decoded(a, b)
        await until("media goes on", lambda: decoded(a, b) >= n + 15)
        assert len(a.session.chain.members) == 2  # type: ignore[union-attr]
        await a.leave()
        await b.leave()

    run(scenario())


def test_the_call_survives_an_sfu_restart() -> None:
    server = start_sfu()
    try:
        async def scenario() -> None:
            nonlocal server
            a, b = call(server, "alice"), call(server, "bob")
            seen: list[Any] = []

            async def collect() -> None:
                async for ev in a.events():
                    seen.append(ev)

            task = asyncio.create_task(collect())
            await a.join()
            await b.join()
            await until("media flows", everyone_sees_everyone([a, b]))
            await until("emoji", same_emoji([a, b]))
            height, emoji = a.roster_height, a.emoji_text
            server.kill()  # SIGKILL: no goodbye to anyone
            server = start_sfu(server.port, server.media_port)
            await until("both reconnected", lambda: all(
                x.joined and x.stats()["call"]["reconnects"] == 1 for x in (a, b)), 30)
            n = decoded(b, a) if a.participant_id in b.participants else 0
            await until("media flows again", everyone_sees_everyone([a, b], frames=10), 20)
            # the roster chain and its keys survived: no new block was needed
            assert a.roster_height == b.roster_height == height
            assert a.emoji_text == b.emoji_text == emoji
            assert n >= 0
            assert any(isinstance(e, Reconnecting) for e in seen)
            assert any(isinstance(e, Reconnected) for e in seen)
            await a.leave()
            await b.leave()
            await task

        run(scenario())
    finally:
        server.stop()


def test_loss_and_jitter_through_the_impairment_proxy(sfu: SfuProcess) -> None:
    model = NetworkModel(base_delay_ms=20, jitter="normal", jitter_mean_ms=10, jitter_std_ms=8,
                         loss_p=0.05, loss_r=1.0, loss_bad=1.0)  # fmt: skip

    async def scenario() -> None:
        async with UdpImpairmentProxy(("127.0.0.1", sfu.media_port), model, seed=7,
                                      reverse_model=model, max_run_s=60) as proxy:
            a = call(sfu, "alice")
            b = call(sfu, "bob", media_via=proxy.address)
            await a.join()
            await b.join()
            await until("video through 5% loss both ways", everyone_sees_everyone([a, b], 60), 30)
            # a few hundred audio packets each way: the model's 5 % loss does hit the audio
            await until("lost audio at B", lambda: b.stats()["received"][a.participant_id]
                        ["audio"]["packetsLost"] > 0, 20)  # fmt: skip
            await asyncio.sleep(1.0)
            rb = b.stats()["received"][a.participant_id]
            ra = a.stats()["received"][b.participant_id]
            assert proxy.stats.dropped > 10
            assert rb["video"]["nackCount"] + ra["video"]["nackCount"] > 0  # losses were NACKed
            # ... and repaired: the SFU answered from its cache or a sender resent (whether the
            # copy still arrived in time for its frame depends on which packets the model drops)
            media = (await a.server_stats())["media"]
            served = sum(m["nacks_served"] for m in media.values())
            resent = sum(x.stats()["sent"]["video"]["retransmittedPacketsSent"] for x in (a, b))
            assert served + resent > 0
            assert rb["audio"]["concealedSamples"] > 0 or rb["audio"]["fecRecoveredFrames"] > 0
            assert rb["video"]["framesPerSecond"] > 15
            assert same_emoji([a, b])()
            await a.leave()
            await b.leave()

    run(scenario())


def sframe_kid(payload: bytes) -> int | None:
    try:
        return decode_header(payload)[0]
    except CryptoError:
        return None


def _process_memory(pid: int) -> bytes:
    """Every readable mapping of a process (we are root in CI; ptrace rules allow it)."""
    out = bytearray()
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("r"):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > 512 * 1024 * 1024:
                continue
            try:
                mem.seek(lo)
                out += mem.read(hi - lo)
            except (OSError, ValueError, OverflowError):
                continue
    return bytes(out)


def test_the_sfu_forwards_ciphertext_and_never_holds_a_key(sfu: SfuProcess) -> None:
    async def scenario() -> None:
        a, b = call(sfu, "alice"), call(sfu, "bob")
        await a.join()
        await b.join()
        # an insider of the server: a raw participant with a valid token, outside the roster
        spy_sig = await SignalingClient.connect(sfu.url, issue_token(SECRET, "e2e", "spy"),
                                                os.urandom(32))
        assert spy_sig.media is not None
        spy = await MediaTransport.connect(spy_sig.media.host, spy_sig.media.port,
                                           spy_sig.media.token)
        await until("media flows", everyone_sees_everyone([a, b], 20))
        payloads: list[bytes] = []
        deadline = time.monotonic() + 3
        while len(payloads) < 100 and time.monotonic() < deadline:
            with_timeout = await spy.receive(timeout=2)
            if with_timeout.kind == "rtp":
                payloads.append(RtpPacket.parse(with_timeout.data).payload)
        assert len(payloads) >= 50
        # every audio payload is an SFrame ciphertext under a sender KID of the group
        kids = {k for x in (a, b) for k in x.session.schedule.receive_keys()}
        audio = [p for p in payloads if sframe_kid(p) in kids]
        assert len(audio) >= 10
        # the keys: every SFrame base key a participant holds, and the spy cannot use any
        keys = [k for x in (a, b) for k in x.session.schedule.receive_keys().values()]
        keys += [x.session.schedule.send_key()[1] for x in (a, b)]
        assert len(keys) >= 2 and all(len(k) == 32 for k in keys)
        memory = _process_memory(sfu.proc.pid)
        assert spy_sig.media.token in memory  # control: the scan does see the server's state
        assert SECRET.encode() in memory
        for key in keys:
            assert key not in memory
        spy.close()
        await spy_sig.leave()
        await a.leave()
        await b.leave()

    run(scenario())


def test_a_congested_receiver_gets_fewer_layers_by_its_own_estimate(sfu: SfuProcess) -> None:
    """B's downlink is a 450 kbit/s bottleneck (the proxy's queue, 1 s deep); A sends ~600
    kbit/s of 3-layer video (its base layer alone fits the bottleneck).  B's delay-based
    estimator sees the queue grow and tells the SFU (REMB), which forwards fewer temporal
    layers to B but all of them to C."""
    bottleneck = NetworkModel(base_delay_ms=5, queue_rate_kbps=450, queue_limit_ms=1000)
    clean = NetworkModel(base_delay_ms=5)
    sender_cfg = GroupCallConfig(video_bitrate_kbps=600, temporal_layers=3)

    async def scenario() -> None:
        async with UdpImpairmentProxy(("127.0.0.1", sfu.media_port), clean, seed=3,
                                      reverse_model=bottleneck, max_run_s=60) as proxy:
            a = GroupCall(sfu.url, "bwe", token=issue_token(SECRET, "bwe", "alice"),
                          video=SyntheticVideoSource(320, 240, fps=30, realtime=True),
                          config=sender_cfg)  # fmt: skip
            b = GroupCall(sfu.url, "bwe", token=issue_token(SECRET, "bwe", "bob"),
                          audio=SyntheticAudioSource(), media_via=proxy.address)  # fmt: skip
            c = GroupCall(sfu.url, "bwe", token=issue_token(SECRET, "bwe", "carol"),
                          audio=SyntheticAudioSource())  # fmt: skip
            for x in (a, b, c):
                await x.join()
            await until("b and c decode a", lambda: decoded(b, a) > 10 and decoded(c, a) > 10, 20)
            await until("b's estimator found the bottleneck",
                        lambda: b.stats()["bwe"]["decreases"] >= 1, 20)
            vid = str(c.participants[a.participant_id].video_ssrc)
            deadline = time.monotonic() + 20
            while True:
                stats = (await a.server_stats())["media"]
                tb = stats[b.participant_id]["temporalLayers"].get(vid)
                tc = stats[c.participant_id]["temporalLayers"].get(vid)
                if tb is not None and (tc is None or tc > tb):
                    break
                assert time.monotonic() < deadline, f"b={tb} c={tc} {stats[b.participant_id]}"
                await asyncio.sleep(0.2)
            sb = stats[b.participant_id]
            assert sb["rembs"] >= 1 and sb["downlinkRembBps"] is not None
            assert sb["downlinkRembBps"] < 600_000
            n = decoded(b, a)
            try:
                await until("b still decodes a (the lower layers)",
                            lambda: decoded(b, a) >= n + 10)
            except AssertionError:
                print(b.stats()["received"][a.participant_id]["video"], b.stats()["bwe"],
                      (await a.server_stats())["media"][b.participant_id], proxy.stats)
                raise
            for x in (a, b, c):
                await x.leave()

    run(scenario())


def test_a_one_to_one_call_relayed_by_the_sfu(sfu: SfuProcess) -> None:
    """Call (1:1, committed key exchange, 4 emoji) with media through the SFU instead of peer
    to peer: every datagram comes from the SFU's media port, the SFU forwarded the media, and
    the emoji are the peers' own (the SFU took part in neither key nor emoji)."""
    from callpipe.call.call import Call, CallConfig, SignalingChannel

    cfg = CallConfig(width=160, height=96, video_bitrate_kbps=250)

    async def scenario() -> None:
        keys = [os.urandom(32), os.urandom(32)]
        sa = await SignalingClient.connect(sfu.url, issue_token(SECRET, "one", "A"), keys[0])
        sb = await SignalingClient.connect(sfu.url, issue_token(SECRET, "one", "B"), keys[1])
        a = Call(SignalingChannel(sa, sb.participant_id), role="caller", call_id=b"one:1",
                 video=SyntheticVideoSource(160, 96, realtime=True), audio=SyntheticAudioSource(),
                 config=cfg, relay=True)  # fmt: skip
        b = Call(SignalingChannel(sb, sa.participant_id), role="callee", call_id=b"one:1",
                 video=SyntheticVideoSource(160, 96, realtime=True), audio=SyntheticAudioSource(),
                 config=cfg, relay=True)  # fmt: skip
        await asyncio.gather(a.start(), b.start())
        assert a.emoji == b.emoji and len(a.emoji) == 4
        assert a.video_send is not None and a.video_send.ssrc == sa.you.ssrcs.video[0]

        def got(x: Call) -> int:
            return int(x.stats()["videoReceive"]["framesDecoded"])

        await until("video both ways through the SFU", lambda: got(a) > 30 and got(b) > 30)
        sa_stats = (await sa.stats())["media"]
        for x in (a, b):
            st = x.stats()
            assert st["remote"] == ("127.0.0.1", sfu.media_port)
            assert st["transport"]["foreignDatagrams"] == 0
            assert st["audioReceive"]["packetsReceived"] > 20
        assert sa_stats[sa.participant_id]["packets_out"] > 30  # the SFU forwarded to A
        assert sa_stats[sb.participant_id]["packets_out"] > 30
        await a.close()
        await b.close()
        await sa.leave()
        await sb.leave()

    run(scenario())


def test_simultaneous_joins_agree_on_one_roster(sfu: SfuProcess) -> None:
    """Four participants join at the same instant: exactly one creates the chain (the one
    whose welcome listed nobody), the others join it; one roster, one set of emoji."""
    async def scenario() -> None:
        calls = [call(sfu, n, room="rush") for n in ("a", "b", "c", "d")]
        await asyncio.gather(*(c.join() for c in calls))
        await until("one roster of four", lambda: all(c.roster_height == 3 for c in calls), 30)
        await until("one set of emoji", same_emoji(calls), 30)
        await until("everyone sees everyone", everyone_sees_everyone(calls, 3), 30)
        heads = {c.session.chain.head_hash for c in calls}  # type: ignore[union-attr]
        assert len(heads) == 1
        assert all(len(c.participants) == 3 for c in calls)  # nobody added twice
        for c in calls:
            await c.leave()

    run(scenario())
