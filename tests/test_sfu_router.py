"""The SFU's routing, sans-I/O: Router.route / tick with injected time, no sockets.

Packets are real RTP from the VP8 packetizer (frame marking + VP8 descriptor with TIDs) around
opaque bytes standing in for SFrame ciphertext; RTCP is built with callpipe.rtp.rtcp.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.net.udp import (
    APP_ACTIVE_SPEAKER,
    AUDIO_LEVEL_EXT_ID,
    FRAME_MARKING_EXT_ID,
    HELLO_OK,
    active_speaker,
    hello_datagram,
    layer_request,
    parse_active_speaker,
)
from callpipe.rtp.packet import RtpPacket, encode_audio_level
from callpipe.rtp.rtcp import (
    App,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    SenderReport,
    parse_rtcp,
)
from callpipe.rtp.vp8 import Vp8Packetizer
from callpipe.sfu.protocol import Ssrcs
from callpipe.sfu.router import LossBasedEstimator, Router, RouterConfig

PATTERN = (0, 2, 1, 2)  # 3 temporal layers, WebRTC's pattern


@dataclass
class Peer:
    pid: str
    ssrcs: Ssrcs
    token: bytes
    addr: tuple[str, int]
    packetizer: Vp8Packetizer
    audio_seq: int = 0


def make_peer(router: Router, room: str, pid: str, port: int, base: int, now: float = 0.0) -> Peer:
    ssrcs = Ssrcs(base + 1, (base + 2,))
    token = os.urandom(16)
    router.add_participant(room, pid, ssrcs, token, now)
    pk = Vp8Packetizer(ssrcs.video[0], 96, temporal_layers=True,
                       frame_marking_id=FRAME_MARKING_EXT_ID, mtu=1200)  # fmt: skip
    return Peer(pid, ssrcs, token, ("127.0.0.1", port), pk)


def register(router: Router, peer: Peer, now: float = 0.0) -> None:
    out = router.route(hello_datagram(peer.token), peer.addr, now)
    assert (HELLO_OK, peer.addr) in out


def frame(peer: Peer, n: int, size: int = 2500, keyframe: bool | None = None) -> list[bytes]:
    tid = PATTERN[n % 4]
    key = n == 0 if keyframe is None else keyframe
    return peer.packetizer.packetize(os.urandom(size), 3000 * n, keyframe=key,
                                     temporal_id=0 if key else tid)  # fmt: skip


def audio(peer: Peer, level: int) -> bytes:
    peer.audio_seq += 1
    ext = [(AUDIO_LEVEL_EXT_ID, encode_audio_level(True, level))]
    seq = peer.audio_seq
    pkt = RtpPacket(111, seq, 960 * seq, peer.ssrcs.audio, os.urandom(60), extensions=ext)
    return pkt.serialize()


def to(out: list[tuple[bytes, tuple[str, int]]], peer: Peer) -> list[bytes]:
    return [d for d, a in out if a == peer.addr]


def rtp_of(datagrams: list[bytes]) -> list[RtpPacket]:
    return [RtpPacket.parse(d) for d in datagrams if not 192 <= d[1] <= 223 and d[:4] != b"CPH1"]


def rtcp_of(datagrams: list[bytes]) -> list[object]:
    return [p for d in datagrams if 192 <= d[1] <= 223 for p in parse_rtcp(d)]


@pytest.fixture
def trio() -> tuple[Router, Peer, Peer, Peer, Peer]:
    router = Router(RouterConfig(max_participants=16, max_sources=64, cache_packets=256), ssrc=7)
    a = make_peer(router, "r", "A", 40001, 100)
    b = make_peer(router, "r", "B", 40002, 200)
    c = make_peer(router, "r", "C", 40003, 300)
    d = make_peer(router, "other", "D", 40004, 400)
    for p in (a, b, c, d):
        register(router, p)
    yield router, a, b, c, d
    router.close()


def test_forwarding_is_byte_identical_and_stays_in_the_room(trio: tuple) -> None:
    router, a, b, c, d = trio
    sent = [p for n in range(8) for p in frame(a, n)]
    out = []
    for i, p in enumerate(sent):
        out += router.route(p, a.addr, 0.01 * i)
    assert to(out, b) == sent and to(out, c) == sent  # every packet, unchanged, in order
    assert to(out, d) == [] and to(out, a) == []
    stats = router.stats()["rooms"]["r"]["participants"]
    assert stats["A"]["packets_in"] == len(sent) and stats["B"]["packets_out"] == len(sent)
    # audio goes to everyone too, unchanged
    pkt = audio(a, 30)
    assert sorted(router.route(pkt, a.addr, 1.0)) == sorted([(pkt, b.addr), (pkt, c.addr)])


def test_tl0_receiver_gets_contiguous_numbers_and_nacks_map_back(trio: tuple) -> None:
    router, a, b, c, _ = trio
    req = layer_request(c.ssrcs.audio, a.ssrcs.video[0], 0)
    assert router.route(req, c.addr, 0.0) == []
    sent = [frame(a, n) for n in range(12)]
    got_b: list[bytes] = []
    got_c: list[bytes] = []
    for n, packets in enumerate(sent):
        for p in packets:
            out = router.route(p, a.addr, 0.02 * n)
            got_b += to(out, b)
            got_c += to(out, c)
    flat = [p for f in sent for p in f]
    assert got_b == flat
    tl0 = [p for n, f in enumerate(sent) for p in f if PATTERN[n % 4] == 0 or n == 0]
    assert len(got_c) == len(tl0) < len(flat)
    cs = rtp_of(got_c)
    seqs = [p.sequence_number for p in cs]
    assert all((y - x) % 65536 == 1 for x, y in zip(seqs, seqs[1:], strict=False)), seqs
    for mine, orig in zip(cs, rtp_of(tl0), strict=True):  # only the sequence number differs
        assert mine.replace(sequence_number=orig.sequence_number).serialize() == orig.serialize()
    # C lost one packet: its NACK (in its own numbering) is answered from the cache
    lost = cs[5]
    nack = Nack.from_lost(c.ssrcs.audio, a.ssrcs.video[0], [lost.sequence_number])
    out = router.route(bytes(nack), c.addr, 1.0)
    assert out == [(lost.serialize(), c.addr)]
    # a number the cache never had goes upstream, in A's numbering
    future = (seqs[-1] + 3) % 65536
    nack = Nack.from_lost(c.ssrcs.audio, a.ssrcs.video[0], [future])
    assert router.route(bytes(nack), c.addr, 1.1) == []  # not given out yet: nothing to ask
    pc = router.stats()["rooms"]["r"]["participants"]["C"]
    assert pc["nacks_served"] == 1 and pc["layer_dropped"] == len(flat) - len(tl0)


def test_cache_miss_is_nacked_upstream_in_the_senders_numbering(trio: tuple) -> None:
    router = Router(RouterConfig(max_participants=4, max_sources=16, cache_packets=4), ssrc=9)
    a = make_peer(router, "r", "A", 41001, 100)
    b = make_peer(router, "r", "B", 41002, 200)
    register(router, a)
    register(router, b)
    sent = [p for n in range(6) for p in frame(a, n, keyframe=False)]
    for p in sent:
        router.route(p, a.addr, 0.0)
    old = RtpPacket.parse(sent[0]).sequence_number  # long out of a 4-packet cache
    out = router.route(bytes(Nack.from_lost(b.ssrcs.audio, a.ssrcs.video[0], [old])), b.addr, 1)
    (data, addr), = out
    (up,) = parse_rtcp(data)
    assert addr == a.addr and isinstance(up, Nack) and up.lost == [old] and up.sender_ssrc == 9
    router.close()


def test_pli_is_forwarded_to_the_sender_rate_limited(trio: tuple) -> None:
    router, a, b, c, _ = trio
    pli = bytes(Pli(b.ssrcs.audio, a.ssrcs.video[0]))
    got = []
    for t in (0.0, 0.05, 0.1, 0.2, 0.35, 0.4):
        got.append(to(router.route(pli, b.addr, t), a))
    assert got == [[pli], [], [], [], [pli], []]
    pb = router.stats()["rooms"]["r"]["participants"]["B"]
    assert (pb["plis_received"], pb["plis_forwarded"], pb["plis_suppressed"]) == (6, 2, 4)
    # a PLI for one's own SSRC or an SSRC of another room goes nowhere
    assert router.route(bytes(Pli(a.ssrcs.audio, a.ssrcs.video[0])), a.addr, 5.0) == []
    assert router.route(bytes(Pli(b.ssrcs.audio, 402)), b.addr, 5.0) == []


def test_loss_reports_lower_a_receivers_layers_and_the_sender_gets_rr_and_remb(trio: tuple) -> None:
    router, a, b, c, _ = trio
    now = 0.0
    n = 0
    remb_seen: list[Remb] = []
    blocks_seen: list[ReportBlock] = []
    key = True  # A answers every PLI with a keyframe

    def feedback(out: list[tuple[bytes, tuple[str, int]]]) -> None:
        nonlocal key
        for pk in rtcp_of(to(out, a)):
            if isinstance(pk, Remb):
                remb_seen.append(pk)
            if isinstance(pk, ReceiverReport):
                blocks_seen.extend(pk.reports)
            key = key or isinstance(pk, Pli)

    for _second in range(8):
        for _ in range(30):  # 30 fps, ~1.3 Mbit/s of 3-layer video
            packets, key = frame(a, n, size=5500, keyframe=key), False
            for p in packets:
                feedback(router.route(p, a.addr, now))
            n += 1
            now += 1 / 30
            feedback(router.tick(now))
        # B reports 30 % loss, C none
        blk = ReportBlock(a.ssrcs.video[0], fraction_lost=77)
        feedback(router.route(bytes(ReceiverReport(b.ssrcs.audio, (blk,))), b.addr, now))
        rr = ReceiverReport(c.ssrcs.audio, (ReportBlock(a.ssrcs.video[0]),))
        feedback(router.route(bytes(rr), c.addr, now))
    ps = router.stats()["rooms"]["r"]["participants"]
    assert ps["B"]["downlinkEstimateBps"] < 400_000 < ps["C"]["downlinkEstimateBps"]
    vid = str(a.ssrcs.video[0])
    assert ps["B"]["temporalLayers"][vid] is not None  # B gets fewer layers
    assert ps["C"]["temporalLayers"][vid] is None  # C gets all of them
    assert ps["B"]["layer_dropped"] > ps["C"]["layer_dropped"]
    slot = {pid: m.slot for pid, m in router.rooms["r"].members.items()}
    assert router.table.link_state(slot["C"], a.ssrcs.video[0]).current_tid is None  # all
    assert router.table.link_state(slot["B"], a.ssrcs.video[0]).current_tid is not None
    assert remb_seen and all(r.ssrcs == (a.ssrcs.video[0],) for r in remb_seen)
    # the sender is not slowed down to B's estimate: the target follows the best receiver
    assert remb_seen[-1].bitrate > ps["B"]["downlinkEstimateBps"]
    assert {b.ssrc for b in blocks_seen} == {a.ssrcs.video[0]}  # A sent no audio here
    assert all(b.fraction_lost == 0 for b in blocks_seen)


def test_a_receivers_delay_based_remb_caps_its_layers_for_five_seconds(trio: tuple) -> None:
    router, a, b, c, _ = trio
    now, n, key = 0.0, 0, True

    def second(remb_b: int | None) -> None:
        nonlocal now, n, key
        for _ in range(30):  # ~1.3 Mbit/s of 3-layer video from A
            for p in frame(a, n, size=5500, keyframe=key):
                out = router.route(p, a.addr, now)
                key = key or any(isinstance(x, Pli) for x in rtcp_of(to(out, a)))
            key = False
            n += 1
            now += 1 / 30
            router.tick(now)
        for peer in (b, c):  # both report no loss: the loss-based estimates grow alike
            rr = ReceiverReport(peer.ssrcs.audio, (ReportBlock(a.ssrcs.video[0]),))
            router.route(bytes(rr), peer.addr, now)
        if remb_b is not None:
            remb = Remb.from_bitrate(b.ssrcs.audio, remb_b, [a.ssrcs.video[0]])
            router.route(bytes(remb), b.addr, now)

    for _ in range(3):
        second(None)
    ps = router.stats()["rooms"]["r"]["participants"]
    assert ps["B"]["downlinkRembBps"] is None
    for _ in range(3):
        second(250_000)  # B's own delay-based estimate: its path queues above 250 kbps
    ps = router.stats()["rooms"]["r"]["participants"]
    vid = str(a.ssrcs.video[0])
    assert ps["B"]["rembs"] == 3 and ps["B"]["downlinkRembBps"] == 250_000
    assert ps["B"]["downlinkEstimateBps"] == 250_000 < ps["B"]["downlinkLossBasedBps"]
    tid_b, tid_c = ps["B"]["temporalLayers"][vid], ps["C"]["temporalLayers"][vid]
    assert tid_b is not None and (tid_c is None or tid_c > tid_b)  # fewer layers for B only
    # a REMB well above what B now gets means "limited by what you send", not congestion:
    # it does not cap, so B's layers go back up (the SFU probes by forwarding more)
    forwarded = router.rooms["r"].members["B"].out_bps
    assert forwarded > 0
    second(int(2 * forwarded))
    ps = router.stats()["rooms"]["r"]["participants"]
    assert ps["B"]["downlinkEstimateBps"] == ps["B"]["downlinkLossBasedBps"]
    tid_up = ps["B"]["temporalLayers"][vid]
    assert tid_up is None or tid_up > tid_b
    second(250_000)  # congested again: capped again
    ps = router.stats()["rooms"]["r"]["participants"]
    assert ps["B"]["downlinkEstimateBps"] == 250_000
    for _ in range(7):  # B stops sending REMB: after 5 s only the loss-based estimate counts
        second(None)
    ps = router.stats()["rooms"]["r"]["participants"]
    assert ps["B"]["downlinkEstimateBps"] == ps["B"]["downlinkLossBasedBps"] > 250_000


def test_sender_reports_reach_receivers_and_give_lsr(trio: tuple) -> None:
    router, a, b, c, _ = trio
    for p in frame(a, 0):
        router.route(p, a.addr, 0.0)
    sr = SenderReport(a.ssrcs.video[0], ntp_timestamp=123 << 32, rtp_timestamp=5,
                      packet_count=3, octet_count=300,
                      reports=(ReportBlock(b.ssrcs.video[0]),))  # fmt: skip
    out = router.route(bytes(sr), a.addr, 0.5)
    fwd = SenderReport(a.ssrcs.video[0], 123 << 32, 5, 3, 300)
    assert sorted(out) == sorted([(bytes(fwd), b.addr), (bytes(fwd), c.addr)])
    reports = [p for d, addr in router.tick(1.0) if addr == a.addr for p in rtcp_of([d])]
    (rr,) = [p for p in reports if isinstance(p, ReceiverReport)]
    (blk,) = rr.reports
    assert blk.lsr == ((123 << 32) >> 16) & 0xFFFFFFFF and blk.dlsr == 32768  # 0.5 s


def test_active_speaker_and_last_n(trio: tuple) -> None:
    router, a, b, c, _ = trio
    router.close()
    router = Router(RouterConfig(max_participants=8, max_sources=32, last_n=1), ssrc=5)
    a = make_peer(router, "r", "A", 42001, 100)
    b = make_peer(router, "r", "B", 42002, 200)
    c = make_peer(router, "r", "C", 42003, 300)
    for p in (a, b, c):
        register(router, p)
    now = 0.0
    speaker_notes: list[int] = []
    got_c: dict[int, int] = {}

    want_key = {a.addr: True, b.addr: True}  # senders answer PLIs with a keyframe

    def deliver(out: list[tuple[bytes, tuple[str, int]]]) -> None:
        for d, addr in out:
            if 192 <= d[1] <= 223:
                for pk in parse_rtcp(d):
                    if isinstance(pk, Pli) and addr in want_key:
                        want_key[addr] = True
                    if isinstance(pk, App) and pk.name == APP_ACTIVE_SPEAKER and addr == c.addr:
                        speaker_notes.append(parse_active_speaker(pk.data))
            elif addr == c.addr and d[1] & 0x7F == 96:
                ssrc = RtpPacket.parse(d).ssrc
                got_c[ssrc] = got_c.get(ssrc, 0) + 1

    def step(loud: Peer, frames: int) -> None:
        nonlocal now
        for n in range(frames):
            for p in (a, b, c):
                deliver(router.route(audio(p, 20 if p is loud else 127), p.addr, now))
            for p in (a, b):
                key, want_key[p.addr] = want_key[p.addr], False
                for pkt in frame(p, n, size=500, keyframe=key):
                    deliver(router.route(pkt, p.addr, now))
            now += 0.05
            deliver(router.tick(now))

    step(a, 20)  # A talks: A is the speaker, only A's video reaches C
    assert speaker_notes == [a.ssrcs.audio]
    assert got_c.get(b.ssrcs.video[0], 0) == 0 and got_c[a.ssrcs.video[0]] > 0
    assert router.stats()["rooms"]["r"]["activeSpeaker"] == "A"
    got_c.clear()
    step(b, 20)  # B talks: the switch, and B's video (from its next keyframe) replaces A's
    assert speaker_notes == [a.ssrcs.audio, b.ssrcs.audio]
    assert got_c.get(b.ssrcs.video[0], 0) > 0
    assert router.stats()["rooms"]["r"]["lastN"] == ["B"]
    assert active_speaker(5, b.ssrcs.audio)[8:12] == b"CPAS"
    router.close()


def test_bad_input_is_counted_and_forwarded_nowhere(trio: tuple) -> None:
    router, a, b, c, _ = trio
    stranger = ("127.0.0.1", 49999)
    packets = frame(a, 0)
    assert router.route(packets[0], stranger, 0) == []  # A's SSRC, wrong address
    assert router.route(b"\x00" * 30, stranger, 0) == []  # not RTP
    assert router.route(b"CPH1" + b"\x00" * 16, stranger, 0) == []  # unknown token
    other = Vp8Packetizer(999, frame_marking_id=FRAME_MARKING_EXT_ID).packetize(b"x" * 50, 0)
    assert router.route(other[0], a.addr, 0) == []  # unknown SSRC
    assert router.route(b"\x81\xc9\x00\x07" + a.ssrcs.audio.to_bytes(4, "big"), a.addr, 0) == []
    late = make_peer(router, "r", "E", 40005, 500)  # joined, no HELLO yet
    assert router.route(frame(late, 0)[0], late.addr, 0) == []
    assert router.route(bytes(App(0, a.ssrcs.audio, b"CPTL", b"\x00" * 4)), a.addr, 0) == []
    counters = router.table.counters()
    assert counters["wrong_address"] == 1 and counters["hello_bad"] == 1
    assert counters["malformed"] == 1 and counters["unknown_ssrc"] == 1
    assert counters["unregistered"] == 1 and counters["forwarded"] == 0
    pa = router.stats()["rooms"]["r"]["participants"]["A"]
    assert pa["rtcp_malformed"] == 2  # the truncated RR and the short CPTL
    # none of it disturbed the room
    out = router.route(packets[0], a.addr, 0)
    assert sorted(a for _, a in out) == [b.addr, c.addr]


def test_leave_stops_forwarding_both_ways(trio: tuple) -> None:
    router, a, b, c, _ = trio
    router.remove_participant("r", "B")
    out = [x for p in frame(a, 0) for x in router.route(p, a.addr, 0)]
    assert {addr for _, addr in out} == {c.addr}
    assert router.route(frame(b, 0)[0], b.addr, 0) == []  # its SSRCs are unknown now
    assert router.table.counters()["unknown_ssrc"] == 1
    assert router.stats()["departed"][-1]["participant"] == "B"
    router.remove_participant("r", "B")  # twice: nothing happens


def test_loss_based_estimator_follows_gcc_rules() -> None:
    e = LossBasedEstimator(1_000_000, 100_000, 2_000_000)
    assert e.on_loss(0.0) == 1_081_000
    assert e.on_loss(0.05) == 1_081_000  # 2..10 %: hold
    assert e.on_loss(0.5) == int(1_081_000 * 0.75)
    for _ in range(100):
        e.on_loss(1.0)
    assert e.bps == 100_000
    for _ in range(100):
        e.on_loss(0.0, cap_bps=300_000)
    assert e.bps == 300_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3)), min_size=1, max_size=40),
    st.lists(st.one_of(st.none(), st.integers(0, 2)), min_size=1, max_size=6),
    st.integers(0, 65535),
)
def test_renumbering_is_contiguous_and_reversible(
    frames: list[tuple[int, int]], limits: list[int | None], first_seq: int
) -> None:
    router = Router(RouterConfig(max_participants=4, max_sources=16, cache_packets=1024), ssrc=3)
    try:
        a = make_peer(router, "r", "A", 43001, 100)
        b = make_peer(router, "r", "B", 43002, 200)
        register(router, a)
        register(router, b)
        pk = Vp8Packetizer(a.ssrcs.video[0], temporal_layers=True, sequence_number=first_seq,
                           frame_marking_id=FRAME_MARKING_EXT_ID, mtu=200)  # fmt: skip
        got: list[tuple[bytes, bytes]] = []  # (original, as B got it)
        for i, (tid, size) in enumerate(frames):
            if i % 7 == 0:
                limit = limits[(i // 7) % len(limits)]
                router.route(layer_request(b.ssrcs.audio, 0, limit), b.addr, 0)
            key = i % 10 == 0
            for p in pk.packetize(os.urandom(150 * size), 3000 * i, keyframe=key,
                                  temporal_id=0 if key else tid):  # fmt: skip
                got += [(p, d) for d in to(router.route(p, a.addr, 0), b)]
        seqs = [RtpPacket.parse(d).sequence_number for _, d in got]
        assert all((y - x) % 65536 == 1 for x, y in zip(seqs, seqs[1:], strict=False))
        for orig, mine in got:
            s = RtpPacket.parse(mine).sequence_number
            assert mine[4:] == orig[4:] and mine[:2] == orig[:2]
            slot = router.rooms["r"].members["B"].slot
            up = router.table.upstream_seq(slot, a.ssrcs.video[0], s)
            assert up == RtpPacket.parse(orig).sequence_number
            assert router.table.resend(slot, a.ssrcs.video[0], s) == mine
    finally:
        router.close()


def test_a_layer_raise_keeps_asking_for_a_keyframe_until_the_receiver_goes_up(
    trio: tuple,
) -> None:
    """The PLI for an upswitch may be suppressed (another went out < 0.3 s ago); the SFU must
    ask again rather than leave the receiver on the lower layers until some later keyframe."""
    router, a, b, c, _ = trio
    now, n = 0.0, 0
    plis: list[float] = []

    def frames(count: int, key_on_pli: bool) -> None:
        nonlocal now, n
        key = n == 0
        for _ in range(count):
            for p in frame(a, n, size=5500, keyframe=key):
                out = router.route(p, a.addr, now)
                got = [x for x in rtcp_of(to(out, a)) if isinstance(x, Pli)]
                plis.extend(now for _ in got)
                key = key_on_pli and bool(got)
            out = router.tick(now)
            got = [x for x in rtcp_of(to(out, a)) if isinstance(x, Pli)]
            plis.extend(now for _ in got)
            key = key or (key_on_pli and bool(got))
            n += 1
            now += 1 / 30

    frames(60, key_on_pli=True)
    vid = a.ssrcs.video[0]
    remb = Remb.from_bitrate(b.ssrcs.audio, 150_000, [vid])
    router.route(bytes(remb), b.addr, now)  # B congested: it goes down to the base layer
    frames(30, key_on_pli=True)
    slot_b = router.rooms["r"].members["B"].slot
    assert router.table.link_state(slot_b, vid).current_tid == 0
    # B's congestion ends (its REMB lapses) while A ignores PLIs for a while: the raise's
    # first PLI is wasted, later ones must follow until a keyframe takes B up again
    plis.clear()
    now += 6.0  # past REMB_FRESH_S
    frames(40, key_on_pli=False)
    assert len(plis) >= 2  # asked more than once while B waited
    frames(10, key_on_pli=True)
    st = router.table.link_state(slot_b, vid)
    assert st.current_tid == st.max_tid and (st.current_tid is None or st.current_tid >= 1)
    assert not router._raises  # nothing left waiting
