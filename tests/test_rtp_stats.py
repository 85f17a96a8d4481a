"""RFC 3550 receiver/sender statistics: loss accounting (A.1, A.3), extended sequence numbers
across the wrap, probation and restarts, the jitter estimator (A.8) against hand-computed
values, LSR/DLSR, and RTT from SR/RR with known NTP values."""

from __future__ import annotations

import pytest

from callpipe.rtp.rtcp import (
    ReceiverReport,
    ReportBlock,
    SenderReport,
    ntp_compact,
    ntp_from_unix,
    parse_rtcp,
)
from callpipe.rtp.stats import ReceiverStatistics, SenderStatistics, rtt_from_report


def test_loss_fraction_and_cumulative() -> None:
    rs = ReceiverStatistics(0x1234, 90000)
    for seq in range(100):
        if seq % 10 != 5:  # 10 of 100 lost
            rs.on_packet(seq, seq * 3000, seq * 0.033, size=1000)
    assert (rs.expected, rs.packets_received, rs.packets_lost) == (100, 90, 10)
    b = rs.report_block(4.0)
    assert (b.ssrc, b.fraction_lost, b.cumulative_lost, b.highest_seq) == (0x1234, 25, 10, 99)
    for seq in range(100, 200):  # a clean interval
        rs.on_packet(seq, seq * 3000, seq * 0.033)
    b = rs.report_block(8.0)
    assert (b.fraction_lost, b.cumulative_lost) == (0, 10)
    rs.on_packet(199, 199 * 3000, 7.0)  # a duplicate: cumulative lost goes down
    rs.on_packet(200, 200 * 3000, 7.0)
    b = rs.report_block(9.0)
    assert (b.fraction_lost, b.cumulative_lost) == (0, 9)
    st = rs.stats()
    assert st["packetsReceived"] == 192 and st["packetsLost"] == 9 and st["bytesReceived"] == 90000
    # half lost in one interval: 128/256
    for seq in range(202, 221, 2):  # 201, 203, ..., 219 lost
        rs.on_packet(seq, seq * 3000, 8.0)
    assert rs.report_block(10.0).fraction_lost == 128


def test_extended_highest_seq_across_the_wrap() -> None:
    rs = ReceiverStatistics(1, 48000)
    for i in range(136):
        rs.on_packet((65500 + i) % 65536, i * 960, i * 0.02)
    assert rs.extended_highest_seq == 65536 + 99
    assert rs.cycles == 65536 and rs.packets_lost == 0
    assert rs.report_block(3.0).highest_seq == 0x10063
    # reordering across the wrap does not add a cycle
    rs.on_packet(65535, 0, 3.0)
    assert rs.extended_highest_seq == 65536 + 99


def test_reordered_packets_count_without_moving_max() -> None:
    rs = ReceiverStatistics(1, 90000)
    for seq in [10, 11, 13, 12, 14]:
        rs.on_packet(seq, seq * 3000, seq * 0.01)
    assert rs.extended_highest_seq == 14 and rs.packets_lost == 0 and rs.expected == 5


def test_probation_and_restart_after_a_large_jump() -> None:
    rs = ReceiverStatistics(1, 90000, min_sequential=2)
    assert rs.on_packet(100, 0, 0.0) is False  # on probation
    assert rs.on_packet(105, 0, 0.0) is False  # not sequential: probation restarts
    assert rs.on_packet(106, 0, 0.0) is True
    assert (rs.base_seq, rs.packets_received, rs.expected) == (106, 1, 1)
    rs.on_packet(107, 0, 0.0)
    assert rs.on_packet(20000, 0, 0.0) is False  # a jump beyond MAX_DROPOUT
    assert rs.packets_received == 2
    assert rs.on_packet(20001, 0, 0.0) is True  # two in a row: the source restarted
    assert (rs.base_seq, rs.packets_received, rs.packets_lost) == (20001, 1, 0)
    with pytest.raises(ValueError):
        rs.on_packet(65536, 0, 0.0)


def test_jitter_against_hand_computed_values() -> None:
    """8 kHz clock, a packet every 20 ms (160 units); arrivals 0, 20, 45, 60, 80, 110 ms.
    D = 0, 40, -40, 0, 80 units; J16 (RFC 3550 A.8, scaled by 16) += |D| - ((J16 + 8) >> 4):
    0, 40, 77, 72, 147."""
    arrivals_ms = [0, 20, 45, 60, 80, 110]
    for offset in (0, 2**32 - 400):  # the same stream with the RTP timestamp wrapping
        rs = ReceiverStatistics(1, 8000)
        q4 = []
        for i, a in enumerate(arrivals_ms):
            rs.on_packet(i, (offset + 160 * i) % 2**32, a / 1000)
            q4.append(rs._jitter_q4)
        assert q4 == [0, 0, 40, 77, 72, 147]
        assert rs.jitter == 9 and rs.jitter_ms == pytest.approx(147 / 16 / 8)
        assert rs.report_block(1.0).jitter == 9
        assert rs.stats()["jitter"] == pytest.approx(147 / 16 / 8000)
    # the float form J += (|D| - J) / 16 lands within a unit
    j = 0.0
    for d in (0, 40, 40, 0, 80):
        j += (d - j) / 16
    assert abs(j - 147 / 16) < 1


def test_jitter_ignores_retransmissions_and_reordered_packets() -> None:
    rs = ReceiverStatistics(1, 8000)
    for i in range(5):
        rs.on_packet(i, 160 * i, i * 0.02)
    assert rs.jitter == 0
    rs.on_packet(1, 160, 5.0, retransmitted=True)  # very late, but a retransmission
    rs.on_packet(2, 320, 5.0)  # old: reordered/duplicate
    rs.on_packet(5, 800, 0.1)
    assert rs._jitter_q4 == 0


def test_lsr_dlsr() -> None:
    rs = ReceiverStatistics(0xAABBCCDD, 90000)
    rs.on_packet(1, 0, 9.9)
    assert (rs.report_block(10.0).lsr, rs.report_block(10.0).dlsr) == (0, 0)
    sr = SenderReport(0xAABBCCDD, 0xE84E3F00_80000000, 90000, 10, 1000)
    rs.on_sender_report(sr, 10.0)
    b = rs.report_block(11.5)
    assert b.lsr == 0x3F008000 and b.dlsr == 98304  # 1.5 s in 1/65536 s


def test_rtt_with_known_ntp_values() -> None:
    # SR sent at compact 0x1234.0000; receiver held it 0.25 s (0x4000); RR back at 0x1234.8000
    block = ReportBlock(1, lsr=0x12340000, dlsr=0x4000)
    assert rtt_from_report(block, 0x00001234_80000000) == 0.25
    # across the 32-bit wrap of the compact format
    block = ReportBlock(1, lsr=0xFFFF8000, dlsr=0x2000)
    assert rtt_from_report(block, 0x0000_0000_4000_0000) == pytest.approx(0xA000 / 65536)
    assert rtt_from_report(ReportBlock(1), 0x1234_0000_0000) is None  # no SR yet
    assert rtt_from_report(ReportBlock(1, lsr=0x10000, dlsr=0x20000), 0x1_0000_0000) == 0.0


def test_sender_statistics_rtt_through_real_rtcp() -> None:
    t0 = 1_700_000_000.0  # sender wallclock (Unix s)
    snd = SenderStatistics(0x5555, 90000)
    for _ in range(10):
        snd.on_packet_sent(1000, 1012)
    sr_wire = bytes(snd.sender_report(t0, 123456))
    sr = parse_rtcp(sr_wire).packets[0]
    assert isinstance(sr, SenderReport)
    assert (sr.packet_count, sr.octet_count, sr.rtp_timestamp) == (10, 10000, 123456)
    assert ntp_compact(sr.ntp_timestamp) == ntp_compact(ntp_from_unix(t0))
    # the receiver (its own monotonic clock) gets it at 5.0 and reports at 5.25
    rcv = ReceiverStatistics(0x5555, 90000)
    rcv.on_packet(1, 0, 4.9)
    rcv.on_sender_report(sr, 5.0)
    rr_wire = bytes(ReceiverReport(0x7777, (rcv.report_block(5.25),)))
    rr = parse_rtcp(rr_wire).packets[0]
    assert isinstance(rr, ReceiverReport)
    # back at the sender 0.4 s after the SR left: RTT = 0.4 - 0.25
    rtt = snd.on_report_block(rr.reports[0], t0 + 0.4)
    assert rtt == pytest.approx(0.15, abs=2 / 65536)
    assert snd.on_report_block(ReportBlock(0x9999, lsr=1), t0) is None  # not about us
    st = snd.stats()
    assert st["roundTripTime"] == rtt and st["roundTripTimeMeasurements"] == 1
    assert st["packetsSent"] == 10 and st["bytesSent"] == 10120
    assert st["packetsLost"] == 0 and st["fractionLost"] == 0.0
