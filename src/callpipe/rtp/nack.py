"""Loss repair by retransmission: a NACK requester, a send-side retransmission history and a
keyframe-request (PLI/FIR) rate limiter.  Sans-I/O: no sockets, no timers, no clock reads —
every call takes ``now`` (seconds, any monotonic origin) and returns what to send.

Receiver side::

    nack = NackRequester()
    keyframes = KeyframeRequester()
    # for every RTP packet (first packet of a keyframe flagged):
    nack.on_packet(seq, now, keyframe_start=is_first_packet_of_keyframe)
    if is_first_packet_of_keyframe:
        keyframes.on_keyframe(now)
    # after each packet and every ~20 ms (or at nack.next_deadline()):
    req = nack.poll(now)
    if req.seqs:
        send(Nack.from_lost(my_ssrc, media_ssrc, req.seqs))
    if req.keyframe:
        keyframes.request(now)
    if (kf := keyframes.poll(now)) is not None:
        send(kf.packet(my_ssrc, media_ssrc))        # a Pli or a Fir

Sender side::

    history = RetransmissionHistory(max_age_ms=1000, max_bytes=2_000_000)
    history.put(seq, packet_bytes, now)              # every RTP packet sent
    answer = history.on_nack(nack.lost, now)        # a NACK arrived
    for pkt in answer.packets: resend(pkt)

The NACK rules follow WebRTC's ``modules/video_coding/nack_requester.cc`` (constants in the
research notes, ``jitter_and_rtp.md`` section 2.5): a missing sequence number is NACKed once
newer packets have advanced ``reorder_packets`` past it and ``reorder_delay_ms`` has passed
since the gap was seen (the reordering allowance), then again every RTT (100 ms until an RTT
is known) up to ``max_retries`` times; the list is capped at ``max_nack_packets`` (overflow
clears it and asks for a keyframe) and at ``max_packet_age`` sequence numbers.  Unlike
WebRTC, giving up on a packet (retries exhausted, or too old to arrive in time:
``age + RTT > max_age_ms``, NetEq's audio rule, section 1.8) asks for a keyframe; and a
keyframe's first packet clears every older missing entry (nothing before a keyframe is
needed to decode it or what follows).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from .rtcp import Fir, FirEntry, Pli
from .seqnum import SequenceUnwrapper, seq_diff

__all__ = [
    "NackRequest",
    "NackRequester",
    "RetransmitAnswer",
    "RetransmissionHistory",
    "KeyframeRequest",
    "KeyframeRequester",
]


#: Tolerance (s) when comparing times: float seconds such as 0.03 - 0.02 land a hair short of
#: 0.01, and a deadline reached to within a nanosecond is reached.
_EPS = 1e-9


# -- receiver: NACK requester ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NackRequest:
    """What :meth:`NackRequester.poll` asks to send now.

    :param seqs: sequence numbers (0..65535) to NACK now, oldest first (may be empty).
    :param keyframe: True when the receiver needs a keyframe (PLI/FIR through a
        :class:`KeyframeRequester`).
    :param reason: why a keyframe is needed (``"nack-list-overflow"``, ``"gave-up"``) or None.
    """

    seqs: tuple[int, ...] = ()
    keyframe: bool = False
    reason: str | None = None

    def __bool__(self) -> bool:
        return bool(self.seqs) or self.keyframe


class _Missing:
    __slots__ = ("ext", "created", "send_at_ext", "sent_at", "retries")

    def __init__(self, ext: int, created: float, send_at_ext: int) -> None:
        self.ext = ext
        self.created = created
        self.send_at_ext = send_at_ext
        self.sent_at: float | None = None
        self.retries = 0


class NackRequester:
    """Tracks missing RTP sequence numbers of one stream and decides when to NACK them.

    Invariants: entries are keyed by extended (unwrapped) sequence number and are always older
    than the newest packet seen; an entry leaves the list when its packet arrives, when it is
    given up, when a keyframe start newer than it arrives, or when the list overflows.

    :param reorder_packets: how many newer packets must arrive after a gap before its first
        NACK (packets; WebRTC's ``send_at_seq_num`` offset, effectively 0 there).
    :param reorder_delay_ms: and how long after the gap was seen (ms; WebRTC's
        ``WebRTC-SendNackDelayMs``, 0..20 there).  Together: the reordering allowance.
    :param default_rtt_ms: resend spacing until :meth:`set_rtt` is called (ms; WebRTC 100).
    :param max_retries: NACKs per packet before giving up (WebRTC ``kMaxNackRetries``, 100).
    :param max_packet_age: entries older than the newest sequence number by more than this
        are dropped (packets; ``kMaxPacketAge`` 10 000).
    :param max_nack_packets: list size cap; overflow clears the list and asks for a keyframe
        (packets; ``kMaxNackPackets`` 1000).
    :param max_age_ms: give up on a packet once ``age + RTT`` reaches this, i.e. once a
        retransmission asked for now would arrive too late (ms; NetEq's ``kMaxNackDelay``
        1000; None disables).
    :param keyframe_on_give_up: ask for a keyframe when giving up on a packet (video: True;
        audio, where the decoder conceals, False).
    """

    def __init__(
        self,
        *,
        reorder_packets: int = 0,
        reorder_delay_ms: float = 10.0,
        default_rtt_ms: float = 100.0,
        max_retries: int = 100,
        max_packet_age: int = 10_000,
        max_nack_packets: int = 1000,
        max_age_ms: float | None = 1000.0,
        keyframe_on_give_up: bool = True,
    ) -> None:
        if reorder_packets < 0 or reorder_delay_ms < 0 or default_rtt_ms <= 0:
            raise ValueError("reorder_packets/reorder_delay_ms must be >= 0, default_rtt_ms > 0")
        if max_retries < 1 or max_packet_age < 1 or max_nack_packets < 1:
            raise ValueError("max_retries, max_packet_age and max_nack_packets must be >= 1")
        if max_age_ms is not None and max_age_ms <= 0:
            raise ValueError(f"max_age_ms must be > 0 or None, got {max_age_ms}")
        self.reorder_packets = reorder_packets
        self.reorder_delay = reorder_delay_ms / 1000
        self.max_retries = max_retries
        self.max_packet_age = max_packet_age
        self.max_nack_packets = max_nack_packets
        self.max_age = None if max_age_ms is None else max_age_ms / 1000
        self.keyframe_on_give_up = keyframe_on_give_up
        self._rtt = default_rtt_ms / 1000
        self._unwrap = SequenceUnwrapper()
        self._newest: int | None = None
        self._missing: OrderedDict[int, _Missing] = OrderedDict()  # ascending ext seq
        self._keyframe_reason: str | None = None
        # stats
        self.nack_count = 0
        self.nacked_seqs = 0
        self.recovered = 0
        self.given_up = 0
        self.retransmitted_received = 0
        self.keyframe_requests = 0

    @property
    def rtt(self) -> float:
        """The round-trip time used for resend spacing (s)."""
        return self._rtt

    def set_rtt(self, rtt_ms: float) -> None:
        """Use ``rtt_ms`` (ms, > 0; from RTCP SR/RR) as the resend spacing from now on."""
        if not rtt_ms > 0:
            raise ValueError(f"rtt_ms must be > 0, got {rtt_ms}")
        self._rtt = rtt_ms / 1000

    @property
    def missing(self) -> list[int]:
        """The sequence numbers (0..65535) currently tracked as missing, oldest first."""
        return [e & 0xFFFF for e in self._missing]

    def on_packet(self, seq: int, now: float, *, keyframe_start: bool = False,
                  retransmitted: bool = False) -> None:
        """Record the arrival of packet ``seq`` (0..65535) at ``now`` (s).

        :param keyframe_start: the packet is the first packet of a keyframe: every missing
            entry older than it is dropped and no keyframe is pending any more.
        :param retransmitted: the packet is a retransmission (counted only).
        """
        if not isinstance(seq, int) or not 0 <= seq <= 0xFFFF:
            raise ValueError(f"seq must be an int in 0..65535, got {seq!r}")
        if retransmitted:
            self.retransmitted_received += 1
        ext = int(self._unwrap.unwrap(seq))
        if self._newest is None:
            self._newest = ext
        elif ext > self._newest:
            self._add_gap(ext, now)
            self._newest = ext
        elif ext < self._newest:
            entry = self._missing.pop(ext, None)
            if entry is not None and entry.retries:
                self.recovered += 1
        if keyframe_start:
            self.clear_up_to(ext & 0xFFFF)
            self._keyframe_reason = None

    def _add_gap(self, ext: int, now: float) -> None:
        assert self._newest is not None
        # drop entries that became too old
        while self._missing:
            oldest = next(iter(self._missing))
            if oldest >= ext - self.max_packet_age:
                break
            del self._missing[oldest]
            self.given_up += 1
        new = ext - self._newest - 1
        if new <= 0:
            return
        if len(self._missing) + new > self.max_nack_packets:
            self._missing.clear()
            self._request_keyframe("nack-list-overflow")
            return
        for s in range(self._newest + 1, ext):
            self._missing[s] = _Missing(s, now, s + self.reorder_packets)

    def _request_keyframe(self, reason: str) -> None:
        if self._keyframe_reason is None:
            self._keyframe_reason = reason

    def clear_up_to(self, seq: int) -> None:
        """Forget every missing entry older than ``seq`` (0..65535), e.g. after a keyframe
        decoded (WebRTC ``ClearUpTo``)."""
        if self._newest is None:
            return
        ext = self._newest + seq_diff(seq, self._newest & 0xFFFF)
        while self._missing:
            oldest = next(iter(self._missing))
            if oldest >= ext:
                break
            del self._missing[oldest]

    def poll(self, now: float) -> NackRequest:
        """What to send at ``now`` (s): the NACKs due and whether a keyframe is needed."""
        due: list[int] = []
        gave_up = 0
        newest = self._newest if self._newest is not None else 0
        for ext in list(self._missing):
            e = self._missing[ext]
            if self.max_age is not None and now - e.created + self._rtt + _EPS >= self.max_age:
                del self._missing[ext]
                gave_up += 1
                continue
            if now - e.created + _EPS < self.reorder_delay:
                continue
            if e.sent_at is None:
                send = newest >= e.send_at_ext
            else:
                send = now - e.sent_at + _EPS >= self._rtt
            if not send:
                continue
            if e.retries >= self.max_retries:
                del self._missing[ext]
                gave_up += 1
                continue
            e.retries += 1
            e.sent_at = now
            due.append(ext & 0xFFFF)
        if gave_up:
            self.given_up += gave_up
            if self.keyframe_on_give_up:
                self._request_keyframe("gave-up")
        reason, self._keyframe_reason = self._keyframe_reason, None
        if reason is not None:
            self.keyframe_requests += 1
        if due:
            self.nack_count += 1
            self.nacked_seqs += len(due)
        return NackRequest(tuple(due), reason is not None, reason)

    def next_deadline(self) -> float | None:
        """The earliest time (s) at which :meth:`poll` will have something to do because of
        time alone (a first NACK, a resend, a give-up); None when nothing waits on time.
        Entries still waiting for ``reorder_packets`` newer packets wait on packets, not time."""
        best: float | None = None
        newest = self._newest if self._newest is not None else 0
        for e in self._missing.values():
            times = []
            if e.sent_at is None:
                if newest >= e.send_at_ext:
                    times.append(e.created + self.reorder_delay)
            else:
                times.append(max(e.sent_at + self._rtt, e.created + self.reorder_delay))
            if self.max_age is not None:
                times.append(e.created + self.max_age - self._rtt)
            for t in times:
                if best is None or t < best:
                    best = t
        return best

    def stats(self) -> dict[str, int]:
        """Counters in webrtc-stats vocabulary where one exists: ``nackCount`` (NACK packets
        asked for), ``retransmittedPacketsReceived``, plus ``nackedSequenceNumbers``,
        ``nackRecoveredPackets`` (NACKed packets that then arrived), ``nackGivenUp`` and
        ``nackKeyframeRequests``."""
        return {
            "nackCount": self.nack_count,
            "retransmittedPacketsReceived": self.retransmitted_received,
            "nackedSequenceNumbers": self.nacked_seqs,
            "nackRecoveredPackets": self.recovered,
            "nackGivenUp": self.given_up,
            "nackKeyframeRequests": self.keyframe_requests,
        }


# -- sender: retransmission history ---------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetransmitAnswer:
    """The answer of :meth:`RetransmissionHistory.on_nack`.

    :param packets: the stored packets to send again, in the order asked.
    :param seqs: their sequence numbers.
    :param missing: asked for but not (or no longer) in the history.
    :param throttled: in the history but resent less than one RTT ago (not sent again).
    """

    packets: tuple[bytes, ...]
    seqs: tuple[int, ...]
    missing: tuple[int, ...]
    throttled: tuple[int, ...]


class _Sent:
    __slots__ = ("packet", "sent_at", "resent_at")

    def __init__(self, packet: bytes, sent_at: float) -> None:
        self.packet = packet
        self.sent_at = sent_at
        self.resent_at: float | None = None


class RetransmissionHistory:
    """The RTP packets sent recently on one SSRC, kept to answer NACKs.

    Sized by time and bytes, not by a packet count: a packet stays while it is younger than
    ``max(max_age_ms, 3 * RTT)`` and the total stays under ``max_bytes`` (oldest dropped first;
    size ``max_bytes`` above the largest keyframe so that one can always be repaired).
    ``max_packets`` is a safety cap (WebRTC ``kMaxCapacity`` 9600).  A packet resent less than
    one RTT ago is not resent again (its retransmission may still be in flight).

    :param max_age_ms: keep packets at least this long (ms; WebRTC's minimum 1000, also the
        SDP ``rtx-time`` role).
    :param max_bytes: total stored bytes cap (bytes).
    :param max_packets: stored packets cap (packets).
    """

    def __init__(self, *, max_age_ms: float = 1000.0, max_bytes: int = 2_000_000,
                 max_packets: int = 9600) -> None:
        if max_age_ms <= 0 or max_bytes <= 0 or max_packets <= 0:
            raise ValueError("max_age_ms, max_bytes and max_packets must be > 0")
        self.max_age = max_age_ms / 1000
        self.max_bytes = max_bytes
        self.max_packets = max_packets
        self._rtt: float | None = None
        self._packets: OrderedDict[int, _Sent] = OrderedDict()  # send order, keyed by seq
        self._bytes = 0
        self.nack_count = 0
        self.retransmitted_packets = 0
        self.retransmitted_bytes = 0
        self.misses = 0
        self.throttled = 0
        self.evicted = 0

    def set_rtt(self, rtt_ms: float) -> None:
        """The current round-trip time (ms, > 0): resend throttle and minimum age 3 x RTT."""
        if not rtt_ms > 0:
            raise ValueError(f"rtt_ms must be > 0, got {rtt_ms}")
        self._rtt = rtt_ms / 1000

    def __len__(self) -> int:
        return len(self._packets)

    @property
    def total_bytes(self) -> int:
        """Bytes stored."""
        return self._bytes

    def __contains__(self, seq: object) -> bool:
        return seq in self._packets

    def _evict(self, now: float) -> None:
        age = self.max_age if self._rtt is None else max(self.max_age, 3 * self._rtt)
        p = self._packets
        while p:
            seq, e = next(iter(p.items()))
            if (now - e.sent_at > age + _EPS or self._bytes > self.max_bytes
                    or len(p) > self.max_packets):
                del p[seq]
                self._bytes -= len(e.packet)
                self.evicted += 1
            else:
                break

    def put(self, seq: int, packet: bytes, now: float) -> None:
        """Store ``packet`` (bytes, the whole RTP packet) sent with sequence number ``seq``
        (0..65535) at ``now`` (s).  A packet with the same ``seq`` (after a wrap) replaces the
        old one."""
        if not isinstance(seq, int) or not 0 <= seq <= 0xFFFF:
            raise ValueError(f"seq must be an int in 0..65535, got {seq!r}")
        if not isinstance(packet, bytes):
            raise TypeError(f"packet must be bytes, got {type(packet).__name__}")
        old = self._packets.pop(seq, None)
        if old is not None:
            self._bytes -= len(old.packet)
        self._packets[seq] = _Sent(packet, now)
        self._bytes += len(packet)
        self._evict(now)

    def get(self, seq: int) -> bytes | None:
        """The stored packet with sequence number ``seq``, or None."""
        e = self._packets.get(seq)
        return None if e is None else e.packet

    def on_nack(self, seqs: Iterable[int], now: float) -> RetransmitAnswer:
        """Answer one NACK packet asking for ``seqs`` (0..65535) at ``now`` (s)."""
        self._evict(now)
        self.nack_count += 1
        packets: list[bytes] = []
        served: list[int] = []
        missing: list[int] = []
        throttled: list[int] = []
        for seq in seqs:
            e = self._packets.get(seq)
            if e is None:
                missing.append(seq)
                continue
            if (e.resent_at is not None and self._rtt is not None
                    and now - e.resent_at + _EPS < self._rtt):
                throttled.append(seq)
                continue
            e.resent_at = now
            packets.append(e.packet)
            served.append(seq)
        self.misses += len(missing)
        self.throttled += len(throttled)
        self.retransmitted_packets += len(packets)
        self.retransmitted_bytes += sum(map(len, packets))
        return RetransmitAnswer(tuple(packets), tuple(served), tuple(missing), tuple(throttled))

    def stats(self) -> dict[str, int]:
        """``nackCount`` (NACK packets received), ``retransmittedPacketsSent``,
        ``retransmittedBytesSent`` (webrtc-stats outbound-rtp names), plus
        ``nackMissedPackets`` (asked for but gone), ``nackThrottledPackets`` and
        ``historyEvictedPackets``."""
        return {
            "nackCount": self.nack_count,
            "retransmittedPacketsSent": self.retransmitted_packets,
            "retransmittedBytesSent": self.retransmitted_bytes,
            "nackMissedPackets": self.misses,
            "nackThrottledPackets": self.throttled,
            "historyEvictedPackets": self.evicted,
        }


# -- receiver: keyframe requests ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class KeyframeRequest:
    """A keyframe request to send now: a PLI, or a FIR with its command sequence number."""

    fir: bool
    seq_nr: int = 0

    def packet(self, sender_ssrc: int, media_ssrc: int) -> Pli | Fir:
        """The RTCP packet: ``Pli(sender, media)`` or a ``Fir`` with one entry for
        ``media_ssrc``."""
        if self.fir:
            return Fir(sender_ssrc, (FirEntry(media_ssrc, self.seq_nr),))
        return Pli(sender_ssrc, media_ssrc)


class KeyframeRequester:
    """Rate-limited keyframe requests (PLI, or FIR for senders that need it).

    Once :meth:`request` is called the receiver is *waiting* for a keyframe: a request goes out
    at once if the last one is older than the interval, and is repeated every interval until
    :meth:`on_keyframe` (WebRTC repeats every 200 ms while waiting).  The interval is
    ``max(min_interval_ms, RTT)`` when an RTT is known: at most one request per RTT.
    A FIR's command sequence number grows by one per new request, not per repetition
    (RFC 5104 section 4.3.1.2).

    :param min_interval_ms: least time between two requests (ms).
    :param use_fir: send FIR instead of PLI.
    """

    def __init__(self, *, min_interval_ms: float = 200.0, use_fir: bool = False) -> None:
        if min_interval_ms < 0:
            raise ValueError(f"min_interval_ms must be >= 0, got {min_interval_ms}")
        self.min_interval = min_interval_ms / 1000
        self.use_fir = use_fir
        self._rtt: float | None = None
        self._last: float | None = None
        self._waiting = False
        self._fir_seq = -1
        self.pli_count = 0
        self.fir_count = 0
        self.suppressed = 0

    def set_rtt(self, rtt_ms: float) -> None:
        """The current round-trip time (ms, > 0)."""
        if not rtt_ms > 0:
            raise ValueError(f"rtt_ms must be > 0, got {rtt_ms}")
        self._rtt = rtt_ms / 1000

    @property
    def interval(self) -> float:
        """The current least time between requests (s)."""
        return max(self.min_interval, self._rtt or 0.0)

    @property
    def waiting(self) -> bool:
        """True while a keyframe was asked for and has not arrived."""
        return self._waiting

    def request(self, now: float) -> KeyframeRequest | None:
        """Ask for a keyframe at ``now`` (s).  Returns the request to send now, or None when
        the rate limit holds it back (it is then sent by a later :meth:`poll`)."""
        if not self._waiting:
            self._waiting = True
            self._fir_seq = (self._fir_seq + 1) & 0xFF
        out = self.poll(now)
        if out is None:
            self.suppressed += 1
        return out

    def poll(self, now: float) -> KeyframeRequest | None:
        """The (repeated) request due at ``now`` (s), if waiting and the interval passed."""
        if not self._waiting or (self._last is not None
                                 and now - self._last + _EPS < self.interval):
            return None
        self._last = now
        if self.use_fir:
            self.fir_count += 1
            return KeyframeRequest(True, self._fir_seq)
        self.pli_count += 1
        return KeyframeRequest(False)

    def on_keyframe(self, now: float) -> None:
        """A keyframe arrived at ``now`` (s): stop asking."""
        self._waiting = False

    def stats(self) -> dict[str, int]:
        """``pliCount`` and ``firCount`` (webrtc-stats: requests sent), and
        ``keyframeRequestsSuppressed`` (held back by the rate limit)."""
        return {"pliCount": self.pli_count, "firCount": self.fir_count,
                "keyframeRequestsSuppressed": self.suppressed}
