"""NACK requester, retransmission history and keyframe-request limiter, on timelines with
injected time (no clocks, no sleeps)."""

from __future__ import annotations

import pytest

from callpipe.rtp.nack import (
    KeyframeRequest,
    KeyframeRequester,
    NackRequester,
    RetransmissionHistory,
)
from callpipe.rtp.rtcp import Fir, FirEntry, Nack, Pli, parse_rtcp


def feed(req: NackRequester, seqs: range | list[int], now: float) -> None:
    for s in seqs:
        req.on_packet(s % 65536, now)


# -- NackRequester ------------------------------------------------------------------------------
def test_gap_is_nacked_after_the_reorder_delay() -> None:
    req = NackRequester(reorder_delay_ms=10)
    feed(req, range(10), 0.0)
    assert not req.poll(0.0)
    req.on_packet(12, 0.020)
    assert req.missing == [10, 11]
    assert req.poll(0.020).seqs == ()
    assert req.poll(0.029).seqs == ()
    assert req.next_deadline() == pytest.approx(0.030)
    r = req.poll(0.030)
    assert r.seqs == (10, 11) and not r.keyframe and bool(r)
    assert req.stats()["nackCount"] == 1 and req.stats()["nackedSequenceNumbers"] == 2


def test_reordering_within_the_allowance_sends_no_nack() -> None:
    req = NackRequester(reorder_delay_ms=10)
    feed(req, range(10), 0.0)
    req.on_packet(12, 0.020)
    req.on_packet(10, 0.025)
    req.on_packet(11, 0.028)
    assert req.missing == []
    assert req.poll(0.030) == req.poll(1.0) == type(req.poll(0.0))()
    assert req.stats()["nackCount"] == 0 and req.next_deadline() is None


def test_reorder_allowance_in_packets() -> None:
    req = NackRequester(reorder_packets=2, reorder_delay_ms=0)
    feed(req, range(10), 0.0)
    req.on_packet(11, 0.01)  # 10 missing, newest 11 < 10 + 2
    assert req.poll(0.01).seqs == ()
    assert req.next_deadline() == pytest.approx(0.01 + 1.0 - 0.1)  # only the age limit
    req.on_packet(12, 0.02)  # newest reached 10 + 2
    assert req.next_deadline() == pytest.approx(0.01)
    assert req.poll(0.02).seqs == (10,)
    waiting = NackRequester(reorder_packets=5, max_age_ms=None)
    feed(waiting, [0, 2], 0.0)
    assert waiting.next_deadline() is None  # waits on packets, not on time


def test_retries_are_spaced_by_rtt() -> None:
    req = NackRequester(reorder_delay_ms=10)  # default RTT 100 ms until told
    feed(req, range(10), 0.0)
    req.on_packet(11, 0.020)
    assert req.poll(0.030).seqs == (10,)
    assert req.poll(0.129).seqs == ()
    assert req.next_deadline() == pytest.approx(0.130)
    assert req.poll(0.130).seqs == (10,)
    req.set_rtt(50)
    assert req.poll(0.179).seqs == ()
    assert req.poll(0.180).seqs == (10,)
    feed(req, range(12, 20), 0.2)  # newer packets do not re-trigger a sent entry
    assert req.poll(0.2).seqs == ()
    assert req.stats()["nackCount"] == 3


def test_give_up_after_max_retries_asks_for_a_keyframe() -> None:
    req = NackRequester(reorder_delay_ms=10, max_retries=3, max_age_ms=None)
    kf = KeyframeRequester()
    feed(req, range(10), 0.0)
    req.on_packet(11, 0.020)
    assert [req.poll(t).seqs for t in (0.03, 0.13, 0.23)] == [(10,)] * 3
    r = req.poll(0.33)
    assert r.seqs == () and r.keyframe and r.reason == "gave-up"
    assert req.missing == [] and req.stats()["nackGivenUp"] == 1
    sent = kf.request(0.33)
    assert sent == KeyframeRequest(False)
    assert sent.packet(1, 2) == Pli(1, 2)
    assert not req.poll(0.5)  # asked once


def test_give_up_by_age_plus_rtt() -> None:
    req = NackRequester(reorder_delay_ms=10, max_age_ms=300)
    feed(req, range(10), 0.0)
    req.on_packet(11, 0.020)
    assert req.poll(0.03).seqs == (10,)
    assert req.poll(0.13).seqs == (10,)
    assert not req.poll(0.219)  # age 0.199 + RTT 0.1 < 0.3
    assert req.next_deadline() == pytest.approx(0.22)
    r = req.poll(0.22)  # age 0.2 + RTT 0.1 = 0.3: a resend would come too late
    assert r.keyframe and r.seqs == ()
    audio = NackRequester(reorder_delay_ms=10, max_age_ms=300, keyframe_on_give_up=False)
    feed(audio, [0, 2], 0.0)
    assert audio.poll(0.5) == type(r)()  # given up silently


def test_keyframe_start_clears_older_missing_entries() -> None:
    req = NackRequester(reorder_delay_ms=0)
    feed(req, [*range(10), 12, 13, 14], 0.0)
    assert req.missing == [10, 11]
    req.on_packet(15, 0.01, keyframe_start=True)
    assert req.missing == []
    req.on_packet(17, 0.02)
    assert req.missing == [16]
    # a keyframe start arriving out of order clears what is older than it, not newer
    feed(req, [20, 25], 0.03)  # missing 16, 18, 19, 21..24
    req.on_packet(19, 0.04, keyframe_start=True)
    assert req.missing == [21, 22, 23, 24]
    req.clear_up_to(23)
    assert req.missing == [23, 24]


def test_keyframe_arrival_cancels_pending_request() -> None:
    req = NackRequester(max_nack_packets=50)
    req.on_packet(0, 0.0)
    req.on_packet(100, 0.01)  # 99 missing > 50: overflow
    assert req.missing == []
    req.on_packet(101, 0.02, keyframe_start=True)
    assert not req.poll(0.03).keyframe


def test_overflow_clears_the_list_and_asks_for_a_keyframe() -> None:
    req = NackRequester(max_nack_packets=50)
    feed(req, range(10), 0.0)
    req.on_packet(40, 0.01)  # 30 missing: fine
    assert len(req.missing) == 30
    req.on_packet(70, 0.02)  # 29 more: 59 > 50
    assert req.missing == []
    r = req.poll(0.03)
    assert r.keyframe and r.reason == "nack-list-overflow" and r.seqs == ()
    assert req.stats()["nackKeyframeRequests"] == 1


def test_entries_older_than_max_packet_age_are_dropped() -> None:
    req = NackRequester(max_packet_age=100, reorder_delay_ms=0)
    feed(req, [0, 1, 3], 0.0)
    assert req.missing == [2]
    feed(req, range(4, 103), 0.01)
    assert req.missing == [2]
    req.on_packet(103, 0.02)  # 2 < 103 - 100
    assert req.missing == []


def test_sequence_wrap() -> None:
    req = NackRequester(reorder_delay_ms=0)
    feed(req, range(65530, 65536), 0.0)
    req.on_packet(2, 0.01)
    assert req.missing == [0, 1]
    seqs = req.poll(0.01).seqs
    assert seqs == (0, 1)
    nack = Nack.from_lost(1, 2, seqs)
    assert nack.items == ((0, 1),)
    req.on_packet(0, 0.05, retransmitted=True)
    assert req.missing == [1]
    assert req.stats()["nackRecoveredPackets"] == 1
    assert req.stats()["retransmittedPacketsReceived"] == 1
    # a gap across the wrap itself
    req2 = NackRequester(reorder_delay_ms=0)
    feed(req2, [65533, 1], 0.0)
    assert req2.missing == [65534, 65535, 0]
    assert Nack.from_lost(1, 2, req2.poll(0.0).seqs).items == ((65534, 0b11),)


def test_duplicates_old_packets_and_bad_input() -> None:
    req = NackRequester()
    feed(req, [5, 5, 4, 3, 6], 0.0)
    assert req.missing == []
    with pytest.raises(ValueError, match="65535"):
        req.on_packet(65536, 0.0)
    with pytest.raises(ValueError):
        req.set_rtt(0)
    with pytest.raises(ValueError):
        NackRequester(max_retries=0)


# -- RetransmissionHistory --------------------------------------------------------------------
def packet(seq: int, size: int = 100) -> bytes:
    return seq.to_bytes(2, "big") * (size // 2)


def test_history_evicts_by_time() -> None:
    hist = RetransmissionHistory(max_age_ms=500)
    for i in range(100):
        hist.put(i, packet(i), i * 0.01)
    # at t = 0.99 packets sent before 0.49 are gone: 49..99 remain
    assert len(hist) == 51 and 48 not in hist and 49 in hist
    assert hist.total_bytes == 51 * 100
    ans = hist.on_nack([10, 60, 99], 0.99)
    assert ans.seqs == (60, 99) and ans.packets == (packet(60), packet(99))
    assert ans.missing == (10,) and ans.throttled == ()
    st = hist.stats()
    assert st["nackCount"] == 1 and st["retransmittedPacketsSent"] == 2
    assert st["retransmittedBytesSent"] == 200 and st["nackMissedPackets"] == 1
    assert st["historyEvictedPackets"] == 49
    # time passing alone evicts at the next NACK
    assert hist.on_nack([60], 1.2).missing == (60,)


def test_history_evicts_by_bytes_and_count() -> None:
    hist = RetransmissionHistory(max_bytes=1000)
    for i in range(25):
        hist.put(i, packet(i), 0.0)
    assert len(hist) == 10 and hist.total_bytes == 1000 and hist.get(15) == packet(15)
    assert hist.get(14) is None
    capped = RetransmissionHistory(max_packets=5)
    for i in range(8):
        capped.put(i, packet(i), 0.0)
    assert len(capped) == 5 and 2 not in capped and 3 in capped


def test_history_rtt_throttle_and_minimum_age() -> None:
    hist = RetransmissionHistory(max_age_ms=100)
    hist.set_rtt(200)  # keep for 3 x RTT = 600 ms
    hist.put(1, packet(1), 0.0)
    assert hist.on_nack([1], 0.05).seqs == (1,)
    assert hist.on_nack([1], 0.20).throttled == (1,)  # resent 150 ms ago < RTT
    assert hist.on_nack([1], 0.25).seqs == (1,)
    assert hist.on_nack([1], 0.61).missing == (1,)
    assert hist.stats()["nackThrottledPackets"] == 1


def test_history_seq_reuse_after_wrap_replaces() -> None:
    hist = RetransmissionHistory()
    hist.put(7, packet(7, 50), 0.0)
    hist.put(7, packet(8, 80), 0.1)
    assert len(hist) == 1 and hist.total_bytes == 80 and hist.get(7) == packet(8, 80)
    with pytest.raises(ValueError):
        hist.put(70000, b"x", 0.0)
    with pytest.raises(TypeError):
        hist.put(1, "x", 0.0)  # type: ignore[arg-type]


def test_nack_repair_end_to_end() -> None:
    """Sender history + lossy link + receiver requester, NACKs over real RTCP bytes."""
    hist = RetransmissionHistory()
    req = NackRequester(reorder_delay_ms=5)
    lost = {65534, 0, 3, 4}
    t = 0.0
    for i in range(12):
        seq = (65530 + i) % 65536
        t = i * 0.002
        hist.put(seq, packet(seq), t)
        if seq not in lost:
            req.on_packet(seq, t)
    r = req.poll(t + 0.01)
    assert set(r.seqs) == {65534, 0, 3, 4}
    wire = bytes(Nack.from_lost(0xAAAA, 0xBBBB, r.seqs))
    nack = parse_rtcp(wire).packets[0]
    assert isinstance(nack, Nack)
    ans = hist.on_nack(nack.lost, t + 0.03)
    assert ans.missing == () and len(ans.packets) == 4
    for p in ans.packets:
        req.on_packet(int.from_bytes(p[:2], "big"), t + 0.05, retransmitted=True)
    assert req.missing == [] and req.stats()["nackRecoveredPackets"] == 4


# -- KeyframeRequester ------------------------------------------------------------------------
def test_pli_rate_limit_and_repetition() -> None:
    kf = KeyframeRequester(min_interval_ms=200)
    assert kf.request(0.0) == KeyframeRequest(False)
    assert kf.request(0.1) is None and kf.waiting
    assert kf.poll(0.15) is None
    assert kf.poll(0.2) == KeyframeRequest(False)  # repeated while waiting
    kf.on_keyframe(0.25)
    assert not kf.waiting and kf.poll(0.5) is None
    assert kf.request(0.5) is not None
    kf.on_keyframe(0.55)
    kf.set_rtt(500)  # now at most one per RTT
    assert kf.interval == 0.5
    assert kf.request(0.9) is None
    assert kf.poll(0.99) is None and kf.poll(1.0) is not None
    st = kf.stats()
    assert st == {"pliCount": 4, "firCount": 0, "keyframeRequestsSuppressed": 2}


def test_fir_sequence_numbers() -> None:
    kf = KeyframeRequester(min_interval_ms=100, use_fir=True)
    first = kf.request(0.0)
    assert first == KeyframeRequest(True, 0)
    assert kf.poll(0.1) == KeyframeRequest(True, 0)  # a repetition keeps the number
    kf.on_keyframe(0.15)
    second = kf.request(0.2)
    assert second == KeyframeRequest(True, 1)
    assert second.packet(1, 0x1234) == Fir(1, (FirEntry(0x1234, 1),))
    for i in range(300):  # the 8-bit number wraps
        kf.on_keyframe(1.0 + i)
        kf.request(1.0 + i + 0.5)
    assert kf.poll(1000.0) == KeyframeRequest(True, 301 % 256)
    assert kf.stats()["firCount"] == 304
