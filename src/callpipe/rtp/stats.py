"""RTP reception and sending statistics (RFC 3550 appendix A.1, A.3, A.8; section 6.4).
Sans-I/O: arrival and send times are passed in (seconds).

* :class:`ReceiverStatistics` — one per received SSRC: sequence validation and extension
  (A.1), expected / received / lost and the fraction lost since the last report (A.3),
  interarrival jitter (A.8), LSR/DLSR bookkeeping; produces :class:`~callpipe.rtp.rtcp.
  ReportBlock` for RR/SR and webrtc-stats ``inbound-rtp`` fields.
* :class:`SenderStatistics` — one per sent SSRC: packet/octet counts for SR, and the round-trip
  time from the report blocks that come back (``RTT = A - LSR - DLSR`` in NTP short format,
  RFC 3550 section 6.4.1), with webrtc-stats ``outbound-rtp`` / ``remote-inbound-rtp`` fields.

Times: ``arrival`` / ``now`` for :class:`ReceiverStatistics` are seconds on any monotonic
clock (only differences matter).  :class:`SenderStatistics` puts ``now`` into the SR's NTP
timestamp, so give it wallclock (Unix) seconds there, and the RR arrival on the same clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rtcp import ReportBlock, SenderReport, ntp_compact, ntp_from_unix
from .seqnum import SEQ_MODULUS, ts_diff

__all__ = ["ReceiverStatistics", "SenderStatistics", "rtt_from_report"]

_SEQ_MOD = SEQ_MODULUS
#: RFC 3550 A.1 constants.
MAX_DROPOUT = 3000
MAX_MISORDER = 100


@dataclass(slots=True)
class _Interval:
    expected_prior: int = 0
    received_prior: int = 0


class ReceiverStatistics:
    """RFC 3550 receiver statistics for one source.

    Invariants: ``expected = extended_highest_seq - base_seq + 1``; ``packets_lost =
    expected - packets_received`` (negative with duplicates); the jitter state is the RFC's
    integer estimator scaled by 16 (``J += (|D| - J) / 16``).

    :param ssrc: the source's SSRC.
    :param clock_rate: the RTP clock rate of the payload (Hz), e.g. 90000 or 48000.
    :param min_sequential: sequential packets needed before a new source (or one that jumped
        more than ``MAX_DROPOUT``) is accepted (RFC 3550 A.1 ``MIN_SEQUENTIAL`` = 2; 1 accepts
        the first packet, which suits authenticated SRTP streams).
    """

    def __init__(self, ssrc: int, clock_rate: int, *, min_sequential: int = 1) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate must be > 0 Hz, got {clock_rate}")
        if min_sequential < 1:
            raise ValueError(f"min_sequential must be >= 1, got {min_sequential}")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.min_sequential = min_sequential
        self._started = False
        self._probation = 0
        self.max_seq = 0
        self.cycles = 0
        self.base_seq = 0
        self.bad_seq = _SEQ_MOD + 1
        self.packets_received = 0
        self.bytes_received = 0
        self._interval = _Interval()
        self._jitter_q4 = 0
        self._last_arrival_units: int | None = None
        self._last_ts = 0
        self._lsr = 0
        self._lsr_arrival: float | None = None
        self.last_arrival: float | None = None

    # -- A.1 ---------------------------------------------------------------------------------
    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1  # so seq == bad_seq is false
        self.cycles = 0
        self.packets_received = 0
        self._interval = _Interval()

    def _update_seq(self, seq: int) -> bool:
        udelta = (seq - self.max_seq) % _SEQ_MOD
        if self._probation:
            if seq == (self.max_seq + 1) % _SEQ_MOD:
                self._probation -= 1
                self.max_seq = seq
                if self._probation == 0:
                    self._init_seq(seq)
                    self.packets_received += 1
                    return True
            else:
                self._probation = self.min_sequential - 1
                self.max_seq = seq
            return False
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:  # in order, with permissible gap: wrapped
                self.cycles += _SEQ_MOD
            self.max_seq = seq
        elif udelta <= _SEQ_MOD - MAX_MISORDER:
            # a very large jump: restart after two sequential packets
            if seq == self.bad_seq:
                self._init_seq(seq)
            else:
                self.bad_seq = (seq + 1) % _SEQ_MOD
                return False
        # else: a duplicate or reordered packet (counted, does not move max_seq)
        self.packets_received += 1
        return True

    def on_packet(self, seq: int, rtp_timestamp: int, arrival: float, *, size: int = 0,
                  retransmitted: bool = False) -> bool:
        """Account one RTP packet.

        :param seq: its sequence number (0..65535).
        :param rtp_timestamp: its RTP timestamp (0..2**32-1, in 1/``clock_rate`` s).
        :param arrival: arrival time (s).
        :param size: its size (bytes) for ``bytesReceived``.
        :param retransmitted: a retransmission: counted, but not used for jitter.
        :returns: False when the packet is not (yet) valid for this source (probation or a
            large jump, RFC 3550 A.1) and was not counted.
        """
        if not 0 <= seq <= 0xFFFF:
            raise ValueError(f"seq must be in 0..65535, got {seq}")
        if not 0 <= rtp_timestamp <= 0xFFFF_FFFF:
            raise ValueError(f"rtp_timestamp must be in 0..2**32-1, got {rtp_timestamp}")
        if not self._started:
            self._started = True
            self._init_seq(seq)
            if self.min_sequential > 1:
                self.max_seq = (seq - 1) % _SEQ_MOD
                self._probation = self.min_sequential
        prev_ext = self.cycles + self.max_seq
        had_packets = self.packets_received > 0
        if not self._update_seq(seq):
            return False
        self.bytes_received += size
        self.last_arrival = arrival
        in_order = not had_packets or self.cycles + self.max_seq > prev_ext
        if in_order and not retransmitted:
            self._update_jitter(rtp_timestamp, arrival)
        return True

    # -- A.8 ---------------------------------------------------------------------------------
    def _update_jitter(self, ts: int, arrival: float) -> None:
        units = round(arrival * self.clock_rate)
        if self._last_arrival_units is not None:
            # D(i-1, i) = (R_i - R_{i-1}) - (S_i - S_{i-1}), wrap-safe on S
            d = abs((units - self._last_arrival_units) - ts_diff(ts, self._last_ts))
            self._jitter_q4 += d - ((self._jitter_q4 + 8) >> 4)
        self._last_arrival_units = units
        self._last_ts = ts

    @property
    def jitter(self) -> int:
        """Interarrival jitter in RTP timestamp units (the RR field)."""
        return self._jitter_q4 >> 4

    @property
    def jitter_ms(self) -> float:
        """Interarrival jitter in milliseconds."""
        return self._jitter_q4 / 16 * 1000 / self.clock_rate

    # -- A.3 ---------------------------------------------------------------------------------
    @property
    def extended_highest_seq(self) -> int:
        """Cycles * 65536 + highest sequence number received."""
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        """Packets expected so far (packets)."""
        if not self.packets_received:
            return 0
        return self.extended_highest_seq - self.base_seq + 1

    @property
    def packets_lost(self) -> int:
        """Cumulative packets lost (expected - received; negative with duplicates)."""
        return self.expected - self.packets_received

    def on_sender_report(self, sr: SenderReport, arrival: float) -> None:
        """Remember an SR from this source that arrived at ``arrival`` (s) for LSR/DLSR."""
        self._lsr = ntp_compact(sr.ntp_timestamp)
        self._lsr_arrival = arrival

    def report_block(self, now: float) -> ReportBlock:
        """The reception report for this source at ``now`` (s), starting a new interval for
        ``fraction_lost``."""
        expected = self.expected
        lost = max(-(2**23), min(2**23 - 1, expected - self.packets_received))
        expected_interval = expected - self._interval.expected_prior
        received_interval = self.packets_received - self._interval.received_prior
        self._interval = _Interval(expected, self.packets_received)
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        dlsr = 0
        if self._lsr_arrival is not None:
            dlsr = max(0, min(0xFFFF_FFFF, round((now - self._lsr_arrival) * 65536)))
        return ReportBlock(self.ssrc, fraction, lost, self.extended_highest_seq & 0xFFFF_FFFF,
                           min(self.jitter, 0xFFFF_FFFF), self._lsr, dlsr)

    def stats(self) -> dict[str, float | int]:
        """webrtc-stats ``inbound-rtp`` fields: ``ssrc``, ``packetsReceived``,
        ``packetsLost``, ``jitter`` (s), ``bytesReceived``, and ``jitterMs``,
        ``extendedHighestSeq``."""
        return {
            "ssrc": self.ssrc,
            "packetsReceived": self.packets_received,
            "packetsLost": self.packets_lost,
            "jitter": self._jitter_q4 / 16 / self.clock_rate,
            "bytesReceived": self.bytes_received,
            "jitterMs": self.jitter_ms,
            "extendedHighestSeq": self.extended_highest_seq,
        }


def rtt_from_report(block: ReportBlock, arrival_ntp: int) -> float | None:
    """Round-trip time (s) from a report block about our stream that arrived at
    ``arrival_ntp`` (64-bit NTP, our clock): ``A - LSR - DLSR`` in 1/65536 s (RFC 3550 section
    6.4.1).  None when the block has no LSR (no SR received yet); 0.0 when clocks make it
    negative."""
    if block.lsr == 0:
        return None
    units = (ntp_compact(arrival_ntp) - block.lsr - block.dlsr) & 0xFFFF_FFFF
    if units >= 0x8000_0000:  # negative: DLSR rounding or a clock step
        return 0.0
    return units / 65536


class SenderStatistics:
    """Counts for SR and the round-trip time from returning report blocks, for one SSRC.

    :param ssrc: our SSRC.
    :param clock_rate: the RTP clock rate (Hz).
    """

    def __init__(self, ssrc: int, clock_rate: int) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock_rate must be > 0 Hz, got {clock_rate}")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.packets_sent = 0
        self.octets_sent = 0
        self.bytes_sent = 0
        self.round_trip_time: float | None = None
        self.total_round_trip_time = 0.0
        self.round_trip_time_measurements = 0
        self.remote_fraction_lost = 0.0
        self.remote_packets_lost = 0
        self.remote_jitter = 0

    def on_packet_sent(self, payload_size: int, packet_size: int | None = None) -> None:
        """Count one RTP packet: ``payload_size`` (bytes, for the SR octet count) and the
        whole ``packet_size`` (bytes, for ``bytesSent``; defaults to the payload size)."""
        self.packets_sent += 1
        self.octets_sent += payload_size
        self.bytes_sent += payload_size if packet_size is None else packet_size

    def sender_report(self, now: float, rtp_timestamp: int,
                      reports: tuple[ReportBlock, ...] = ()) -> SenderReport:
        """An SR at wallclock ``now`` (Unix s) whose RTP timestamp is ``rtp_timestamp`` (the
        stream clock at ``now``), with our counts (mod 2**32) and ``reports``."""
        return SenderReport(self.ssrc, ntp_from_unix(now), rtp_timestamp & 0xFFFF_FFFF,
                            self.packets_sent & 0xFFFF_FFFF, self.octets_sent & 0xFFFF_FFFF,
                            reports)

    def on_report_block(self, block: ReportBlock, arrival: float) -> float | None:
        """Take a report block from an RR/SR that arrived at wallclock ``arrival`` (Unix s).
        Blocks about other SSRCs are ignored.  Returns the new RTT (s) or None."""
        if block.ssrc != self.ssrc:
            return None
        self.remote_fraction_lost = block.fraction_lost / 256
        self.remote_packets_lost = block.cumulative_lost
        self.remote_jitter = block.jitter
        rtt = rtt_from_report(block, ntp_from_unix(arrival))
        if rtt is not None:
            self.round_trip_time = rtt
            self.total_round_trip_time += rtt
            self.round_trip_time_measurements += 1
        return rtt

    def stats(self) -> dict[str, float | int | None]:
        """webrtc-stats ``outbound-rtp`` (``packetsSent``, ``bytesSent``) and
        ``remote-inbound-rtp`` (``roundTripTime`` s, ``totalRoundTripTime`` s,
        ``roundTripTimeMeasurements``, ``fractionLost`` 0..1, ``packetsLost``, ``jitter`` s)
        fields."""
        return {
            "ssrc": self.ssrc,
            "packetsSent": self.packets_sent,
            "bytesSent": self.bytes_sent,
            "roundTripTime": self.round_trip_time,
            "totalRoundTripTime": self.total_round_trip_time,
            "roundTripTimeMeasurements": self.round_trip_time_measurements,
            "fractionLost": self.remote_fraction_lost,
            "packetsLost": self.remote_packets_lost,
            "jitter": self.remote_jitter / self.clock_rate,
        }
