"""The SFU's media routing, sans-I/O: who gets which packets, and the RTCP the SFU speaks.

The per-packet decisions run in C (:class:`~callpipe.sfu._forward.ForwardTable`, the
"decision table": SSRC -> sender, per (receiver, SSRC) links with their temporal-layer limit,
on/off switch, keyframe wait and sequence-number rewriting, and the NACK packet cache).  The
:class:`Router` here programs that table and handles everything that is not per packet; it
never opens a socket or reads a clock (``now`` is passed in, s on a monotonic clock) and
returns the datagrams to send as ``[(bytes, (host, port)), ...]``.

The wire conventions (HELLO, RTCP rules, ``CPTL``/``CPAS`` APP packets, extension ids) are
documented in :mod:`callpipe.net.udp`.  What the router decides:

**Temporal layers per receiver.**  A receiver gets temporal layers ``0..min(requested,
automatic)`` of each video SSRC.  *Requested* comes from its ``CPTL`` APP packets (per SSRC or
for all).  *Automatic* (once the receiver has sent receiver reports; before that it is not
limited) comes from its bandwidth estimate: its share per forwarded video stream is
``(estimate - 40 kbps x other participants) / video streams flowing to it``, and it gets the
highest temporal layer whose measured cumulative bitrate fits the share (15 % headroom to go
up).  Raising the
limit asks the sender for a keyframe (upgrades take effect at keyframes or layer-sync frames).

**Bandwidth estimate per receiver (loss-based, terminated RRs).**  Every RR/SR report block a
receiver sends about the streams it gets is a loss sample; per RR the mean ``fraction_lost`` of
its blocks drives the loss-based controller of GCC (draft-ietf-rmcat-gcc-02 section 6): above
10 % loss ``A = A x (1 - 0.5 loss)``, below 2 % ``A = 1.08 A + 1 kbps`` (at most 3x what is
actually forwarded to it, so an idle estimate does not run away), else unchanged; clamped to
``[min_bitrate_bps, max_bitrate_bps]``, starting at ``start_bitrate_bps``.  The same controller
runs on each sender's uplink, fed by the loss the SFU itself measures on the sender's SSRCs.
**Delay-based**: a receiver may send REMB with its own delay-based estimate of its downlink
(:mod:`callpipe.rtp.bwe`, what :class:`~callpipe.call.group.GroupCall` does every second); for
``REMB_FRESH_S`` (5 s) after one, the receiver's estimate is ``min(loss-based, REMB)`` -- as
long as the REMB is below ``REMB_PROBE_FACTOR`` (1.4) x what is forwarded to it (a receive-side
estimate cannot exceed 1.5 x its arrivals, so a higher one means "limited by what you send") --
and its layers are re-chosen at once.

**What the sender is told.**  Every ``report_interval_s`` each sender gets a compound RTCP
packet: RR (one block per SSRC it sends, with LSR/DLSR from its SRs so it can measure the RTT
to the SFU) + SDES CNAME ``callpipe-sfu`` + REMB for its video SSRCs with
``min(uplink estimate, max over its receivers of their share)`` bits/s.  Receivers whose share
is below that get fewer temporal layers instead of slowing the sender for everyone.

**NACK.**  Answered from the cache in the receiver's numbering; misses go upstream (once per
NACK, in the sender's numbering).  **PLI/FIR.**  Forwarded to the media sender at most once per
``pli_interval_s`` per media SSRC; the SFU sends its own PLI when a receiver waits for a
keyframe (joined, re-registered, source re-enabled, layer raised) with the same limit.

**Active speaker and last-N.**  Every ``speaker_interval_s`` the mean audio level (RFC 6464,
read by the C path from every audio packet) of each participant is smoothed
(``x = 0.5 x + 0.5 level``); the loudest participant above ``speech_threshold`` (in
``127 - level`` units: 77 = louder than -50 dBov) becomes the active speaker after
``speaker_hold`` consecutive intervals on top, and every participant of the room gets APP
``CPAS``.  With ``last_n > 0`` only the video of the ``last_n`` most recent speakers (by time
of last speech; join order before anyone spoke) is forwarded; the others' video is switched
off for every receiver, and switched back on (after a keyframe) when they speak.

**Simulcast.**  A sender with several video SSRCs (``video_layers`` > 1, lowest resolution
first): each receiver gets exactly one of them, the highest whose measured bitrate fits its
share (the lowest if none does); switching asks for a keyframe on the new SSRC.  Receivers
must expect a sender's video on any of its video SSRCs, one at a time.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import TransportError
from ..net.udp import (
    APP_LAYER_REQUEST,
    AUDIO_LEVEL_EXT_ID,
    FRAME_MARKING_EXT_ID,
    PLI_INTERVAL_S,
    REPORT_INTERVAL_S,
    active_speaker,
    parse_layer_request,
)
from ..rtp.rtcp import (
    App,
    Fir,
    Nack,
    Pli,
    ReceiverReport,
    Remb,
    ReportBlock,
    SenderReport,
    SourceDescription,
    build_compound,
    ntp_compact,
    parse_rtcp,
)
from ..sfu.protocol import Ssrcs
from . import _forward

#: how long a receiver's REMB (its delay-based downlink estimate) counts, s
REMB_FRESH_S = 5.0
#: a REMB at or above this many times the forwarded rate does not cap the estimate (see
#: ``_Member.downlink_bps``)
REMB_PROBE_FACTOR = 1.4

__all__ = ["RouterConfig", "LossBasedEstimator", "Router", "Outgoing"]

#: a datagram to send: (bytes, (host, port))
Outgoing = tuple[bytes, tuple[str, int]]

_CNAME = "callpipe-sfu"
_MAX_BLOCKS = 31


@dataclass(frozen=True)
class RouterConfig:
    """Settings of the media plane (defaults in brackets).

    :param max_participants: participants across all rooms [1024].
    :param max_sources: SSRCs across all rooms [8192].
    :param cache_packets: packets cached per video SSRC for NACKs [512].
    :param batch: datagrams per recvmmsg [64].
    :param last_n: forward the video of only the N most recent speakers; 0 = everyone [0].
    :param adaptive_layers: drop temporal layers for receivers whose estimate is too low [True].
    :param pli_interval_s: s between PLI/FIR forwarded (or sent) per media SSRC [0.3].
    :param report_interval_s: s between the SFU's RR + REMB to each sender [1.0].
    :param speaker_interval_s: s between active-speaker decisions [0.2].
    :param speaker_hold: intervals a new speaker must be loudest before switching [2].
    :param speech_threshold: smoothed ``127 - level`` above which a participant speaks [77].
    :param start_bitrate_bps: first estimate of every path, bits/s [1 000 000].
    :param min_bitrate_bps: lowest estimate, bits/s [100 000].
    :param max_bitrate_bps: highest estimate, bits/s [10 000 000].
    :param audio_bitrate_bps: reserved per forwarded audio stream, bits/s [40 000].
    :param rate_packets: packets/s one participant may send [2000].
    :param burst_packets: packets above that at once [500].
    :param rate_bytes: bytes/s one participant may send [4 000 000].
    :param burst_bytes: bytes above that at once [1 000 000].
    :param audio_level_id: extension id of the audio level [1].
    :param frame_marking_id: extension id of frame marking [2].
    """

    max_participants: int = 1024
    max_sources: int = 8192
    cache_packets: int = 512
    batch: int = 64
    last_n: int = 0
    adaptive_layers: bool = True
    pli_interval_s: float = PLI_INTERVAL_S
    report_interval_s: float = REPORT_INTERVAL_S
    speaker_interval_s: float = 0.2
    speaker_hold: int = 2
    speech_threshold: float = 77.0
    start_bitrate_bps: int = 1_000_000
    min_bitrate_bps: int = 100_000
    max_bitrate_bps: int = 10_000_000
    audio_bitrate_bps: int = 40_000
    rate_packets: float = 2000.0
    burst_packets: float = 500.0
    rate_bytes: float = 4e6
    burst_bytes: float = 1e6
    audio_level_id: int = AUDIO_LEVEL_EXT_ID
    frame_marking_id: int = FRAME_MARKING_EXT_ID

    def __post_init__(self) -> None:
        if self.last_n < 0:
            raise ValueError(f"last_n must be >= 0, got {self.last_n}")
        if not 0 < self.min_bitrate_bps <= self.start_bitrate_bps <= self.max_bitrate_bps:
            raise ValueError("need 0 < min_bitrate_bps <= start_bitrate_bps <= max_bitrate_bps")
        for name in ("pli_interval_s", "report_interval_s", "speaker_interval_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("rate_packets", "burst_packets", "rate_bytes", "burst_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0: no limit)")
        if self.cache_packets < 0:
            raise ValueError("cache_packets must be >= 0")


class LossBasedEstimator:
    """GCC's loss-based rate controller (draft-ietf-rmcat-gcc-02 section 6) for one path.

    :param start_bps: first estimate, bits/s.
    :param min_bps: lowest estimate, bits/s.
    :param max_bps: highest estimate, bits/s.
    """

    def __init__(self, start_bps: int, min_bps: int, max_bps: int) -> None:
        self.estimate = float(start_bps)
        self.min = float(min_bps)
        self.max = float(max_bps)
        self.last_loss = 0.0
        self.samples = 0

    def on_loss(self, fraction: float, cap_bps: float | None = None) -> int:
        """One loss report: ``fraction`` lost (0..1) since the previous one.

        :param cap_bps: do not grow above this many bits/s (e.g. 3x what is sent).
        :returns: the new estimate, bits/s.
        """
        self.samples += 1
        self.last_loss = fraction
        if fraction > 0.10:
            self.estimate *= 1.0 - 0.5 * fraction
        elif fraction < 0.02:
            grown = 1.08 * self.estimate + 1000.0
            if cap_bps is not None:
                grown = min(grown, max(cap_bps, self.estimate))
            self.estimate = grown
        self.estimate = min(self.max, max(self.min, self.estimate))
        return int(self.estimate)

    @property
    def bps(self) -> int:
        """The estimate, bits/s."""
        return int(self.estimate)


@dataclass
class _Counters:
    nacks_received: int = 0  # sequence numbers asked for
    nacks_served: int = 0  # answered from the cache
    nacks_forwarded: int = 0  # asked upstream
    plis_received: int = 0
    plis_forwarded: int = 0
    plis_suppressed: int = 0
    plis_sent: int = 0  # the SFU's own, for a keyframe wait / layer raise
    rtcp_malformed: int = 0
    layer_requests: int = 0
    rrs: int = 0
    rembs: int = 0  # REMBs received from this participant (its downlink estimate)

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Member:
    room: str
    pid: str
    slot: int
    ssrcs: Ssrcs
    order: int
    downlink: LossBasedEstimator
    uplink: LossBasedEstimator
    registered: bool = False
    requested: dict[int, int | None] = field(default_factory=dict)  # media SSRC (0 = all)
    applied_tid: dict[int, int | None] = field(default_factory=dict)
    enabled: dict[int, bool] = field(default_factory=dict)
    loudness: float = 0.0
    on_top: int = 0
    last_spoke: float | None = None
    sr: dict[int, tuple[int, float]] = field(default_factory=dict)  # ssrc -> (LSR, arrival)
    bytes_out: int = 0
    out_bps: float = 0.0
    remb_bps: int | None = None  # the receiver's own delay-based estimate of its downlink
    remb_at: float = 0.0
    counters: _Counters = field(default_factory=_Counters)

    def downlink_bps(self, now: float) -> float:
        """The estimate of the path to this receiver: the loss-based one, capped by the
        receiver's own delay-based REMB while that is fresh (5 s) *and* says less than
        ``REMB_PROBE_FACTOR`` x what is being forwarded to it.  A receive-side estimate cannot
        grow past 1.5 x what arrives (GCC), so once fewer layers are forwarded a REMB near that
        bound means "not congested, limited by what you send": it is then ignored, the layers
        go up again, and a real bottleneck shows up as over-use (REMB ~ 0.85 x arrivals) at
        once.  Without this, one false alarm would keep a receiver on fewer layers for good."""
        remb = self.remb_bps
        if (
            remb is not None
            and now - self.remb_at <= REMB_FRESH_S
            and remb < REMB_PROBE_FACTOR * self.out_bps
        ):
            return min(self.downlink.estimate, float(remb))
        return self.downlink.estimate


@dataclass
class _Room:
    name: str
    number: int
    members: dict[str, _Member] = field(default_factory=dict)
    speaker: str | None = None
    last_n_set: frozenset[str] = frozenset()


@dataclass
class _Layers:
    """Measured bitrate of one video SSRC per temporal layer (bits/s, smoothed)."""

    last_bytes: list[int] = field(default_factory=lambda: [0] * 8)
    bps: list[float] = field(default_factory=lambda: [0.0] * 8)
    at: float | None = None

    def update(self, layer_bytes: list[int], now: float) -> None:
        if self.at is not None and now > self.at:
            dt = now - self.at
            for i in range(8):
                rate = 8.0 * (layer_bytes[i] - self.last_bytes[i]) / dt
                self.bps[i] = rate if self.bps[i] == 0.0 else 0.6 * self.bps[i] + 0.4 * rate
        self.last_bytes = list(layer_bytes)
        self.at = now

    def top(self) -> int:
        """Highest temporal id carrying data (0 if none)."""
        return max((i for i in range(8) if self.bps[i] > 0), default=0)

    def cumulative(self, tid: int) -> float:
        return sum(self.bps[: tid + 1])

    def total(self) -> float:
        return sum(self.bps)


class Router:
    """The SFU's media control plane over one :class:`~callpipe.sfu._forward.ForwardTable`.

    Sans-I/O: :meth:`route` (a datagram in, datagrams out; used by tests and by anything
    without a socket), :meth:`handle_events` (after the native pump), :meth:`tick` (timers,
    call at :meth:`next_deadline`).  Every method takes ``now`` in s (monotonic).

    :param config: the settings.
    :param ssrc: the SFU's own RTCP SSRC (default: random).
    :param now: the current time, s (first timer deadlines).
    """

    def __init__(
        self,
        config: RouterConfig | None = None,
        *,
        ssrc: int | None = None,
        now: float = 0.0,
    ) -> None:
        self.config = config or RouterConfig()
        c = self.config
        self.ssrc = (secrets.randbits(32) or 1) if ssrc is None else ssrc
        self.table = _forward.ForwardTable(
            max_participants=c.max_participants,
            max_sources=c.max_sources,
            cache_packets=c.cache_packets,
            batch=c.batch,
            audio_level_id=c.audio_level_id,
            frame_marking_id=c.frame_marking_id,
            rate_packets=c.rate_packets,
            burst_packets=c.burst_packets,
            rate_bytes=c.rate_bytes,
            burst_bytes=c.burst_bytes,
        )
        self.rooms: dict[str, _Room] = {}
        self._by_slot: dict[int, _Member] = {}
        self._room_numbers = 0
        self._joins = 0
        self._last_pli: dict[int, float] = {}
        self._layers: dict[int, _Layers] = {}
        self._next_report = now + c.report_interval_s
        self._next_speaker = now + c.speaker_interval_s
        self._now = now  # the latest time seen (route/handle_events/tick)
        #: links waiting to go up a layer: (media SSRC, room, receiver); a PLI is repeated
        #: (rate-limited) every tick until a keyframe takes the receiver up -- a PLI can be
        #: suppressed, lost or ignored, and without a keyframe the receiver stays down for good
        self._raises: dict[tuple[int, str, str], None] = {}
        self.speaker_changes = 0
        #: the final stats of the last 1000 participants who left
        self.departed: deque[dict[str, Any]] = deque(maxlen=1000)

    # ----------------------------------------------------------------------- membership
    def add_participant(
        self, room: str, participant: str, ssrcs: Ssrcs, media_token: bytes, now: float = 0.0
    ) -> None:
        """A participant joined (see :class:`~callpipe.sfu.signaling.MediaPlane`)."""
        r = self.rooms.get(room)
        if r is None:
            self._room_numbers += 1
            r = self.rooms[room] = _Room(room, self._room_numbers)
        if participant in r.members:
            raise ValueError(f"participant {participant!r} is already in room {room!r}")
        slot = self.table.add_participant(r.number, media_token)
        c = self.config
        try:
            self.table.add_source(slot, ssrcs.audio, _forward.AUDIO, 48000)
            for i, v in enumerate(ssrcs.video):
                self.table.add_source(slot, v, _forward.VIDEO, 90000, i)
            for i, x in enumerate(ssrcs.rtx):
                self.table.add_source(slot, x, _forward.RTX, 90000, i)
        except (ValueError, KeyError, MemoryError):
            self.table.remove_participant(slot)
            if not r.members:
                del self.rooms[room]
            raise
        self._joins += 1
        m = _Member(
            room, participant, slot, ssrcs, self._joins,
            LossBasedEstimator(c.start_bitrate_bps, c.min_bitrate_bps, c.max_bitrate_bps),
            LossBasedEstimator(c.start_bitrate_bps, c.min_bitrate_bps, c.max_bitrate_bps),
        )  # fmt: skip
        r.members[participant] = m
        self._by_slot[slot] = m
        for v in ssrcs.video:
            self._layers[v] = _Layers()
        self._apply_room(r, now)

    def remove_participant(self, room: str, participant: str, now: float = 0.0) -> None:
        """A participant left: nothing more is forwarded to or from it."""
        r = self.rooms.get(room)
        if r is None:
            return
        if participant not in r.members:
            return
        final = self.participant_stats(room, participant)
        final.update(room=room, participant=participant, registered=False, address=None)
        self.departed.append(final)
        m = r.members.pop(participant)
        self.table.remove_participant(m.slot)
        self._by_slot.pop(m.slot, None)
        for s in m.ssrcs.all():
            self._layers.pop(s, None)
            self._last_pli.pop(s, None)
        if r.speaker == participant:
            r.speaker = None
        if not r.members:
            del self.rooms[room]
        else:
            self._apply_room(r, now)

    def close(self) -> None:
        """Free the native table (idempotent)."""
        self.table.close()

    # ----------------------------------------------------------------------- I/O-free paths
    def route(self, data: bytes, addr: tuple[str, int], now: float) -> list[Outgoing]:
        """One datagram from ``addr``: what to send (forwarded copies, answers, feedback)."""
        out = self.table.route(data, addr, int(now * 1e6))
        out.extend(self.handle_events(self.table.events(), now))
        return out

    def handle_events(self, events: Iterable[_forward.Event], now: float) -> list[Outgoing]:
        """React to the native path's events (RTCP, registrations, keyframe waits)."""
        out: list[Outgoing] = []
        self._now = max(self._now, now)
        for ev in events:
            m = self._by_slot.get(ev.participant)
            if m is None:
                continue
            if ev.type == _forward.EV_RTCP:
                self._on_rtcp(m, ev.data, now, out)
            elif ev.type == _forward.EV_REGISTERED:
                m.registered = True
                r = self.rooms.get(m.room)
                if r is not None:
                    self._apply_receiver(r, m, now, out)
            elif ev.type == _forward.EV_KEYFRAME_WAIT:
                self._request_keyframe(ev.ssrc, now, out, on_behalf=m)
        return out

    def next_deadline(self) -> float:
        """When :meth:`tick` has work next, s."""
        if self._raises:
            return min(self._now + self.config.pli_interval_s, self._next_report,
                       self._next_speaker)  # fmt: skip
        return min(self._next_report, self._next_speaker)

    def tick(self, now: float) -> list[Outgoing]:
        """Timers: active speaker / last-N, and the periodic RR + REMB to senders."""
        out: list[Outgoing] = []
        self._now = max(self._now, now)
        for key in list(self._raises):
            media_ssrc, room, pid = key
            r = self.rooms.get(room)
            m = r.members.get(pid) if r is not None else None
            if m is None or not self._waits_to_go_up(m, media_ssrc):
                del self._raises[key]
            else:
                self._request_keyframe(media_ssrc, now, out, on_behalf=m)
        if now + 1e-9 >= self._next_speaker:
            self._next_speaker = now + self.config.speaker_interval_s
            self._speakers(now, out)
        if now + 1e-9 >= self._next_report:
            self._next_report = now + self.config.report_interval_s
            self._reports(now, out)
        return out

    # ----------------------------------------------------------------------- RTCP in
    def _addr(self, m: _Member) -> tuple[str, int] | None:
        return self.table.address(m.slot)

    def _owner(self, ssrc: int) -> _Member | None:
        slot = self.table.source_owner(ssrc)
        return None if slot is None else self._by_slot.get(slot)

    def _on_rtcp(self, m: _Member, data: bytes, now: float, out: list[Outgoing]) -> None:
        try:
            compound = parse_rtcp(data)
        except (TransportError, ValueError):
            m.counters.rtcp_malformed += 1
            return
        r = self.rooms.get(m.room)
        if r is None:
            return
        for p in compound:
            if isinstance(p, SenderReport):
                if p.ssrc not in m.ssrcs.all():  # only about one's own streams
                    m.counters.rtcp_malformed += 1
                    continue
                m.sr[p.ssrc] = (ntp_compact(p.ntp_timestamp), now)
                fwd = bytes(SenderReport(p.ssrc, p.ntp_timestamp, p.rtp_timestamp,
                                         p.packet_count, p.octet_count))  # fmt: skip
                for other in r.members.values():
                    if other is not m and (a := self._addr(other)) is not None:
                        out.append((fwd, a))
                self._on_report_blocks(m, p.reports, r, now, out)
            elif isinstance(p, ReceiverReport):
                self._on_report_blocks(m, p.reports, r, now, out)
            elif isinstance(p, Nack):
                self._on_nack(m, p, now, out)
            elif isinstance(p, Pli):
                m.counters.plis_received += 1
                self._forward_keyframe_request(m, p.media_ssrc, bytes(p), now, out)
            elif isinstance(p, Fir):
                m.counters.plis_received += 1
                for e in p.entries:
                    self._forward_keyframe_request(m, e.ssrc, bytes(p), now, out)
            elif isinstance(p, App) and p.name == APP_LAYER_REQUEST:
                try:
                    media, tid = parse_layer_request(p.data)
                except ValueError:
                    m.counters.rtcp_malformed += 1
                    continue
                m.counters.layer_requests += 1
                if media == 0:
                    m.requested = {0: tid}
                else:
                    m.requested[media] = tid
                self._apply_receiver(r, m, now, out)
            elif isinstance(p, Remb):
                # the receiver's delay-based estimate of its downlink (rtp/bwe.py): it caps
                # the loss-based one; layers follow at once
                m.counters.rembs += 1
                m.remb_bps, m.remb_at = p.bitrate, now
                self._now = max(self._now, now)
                if self.config.adaptive_layers:
                    self._apply_receiver(r, m, now, out)
            # SDES, BYE, other APP, XR, ...: terminated here

    def _on_report_blocks(
        self,
        m: _Member,
        blocks: Iterable[ReportBlock],
        r: _Room,
        now: float,
        out: list[Outgoing],
    ) -> None:
        fractions = []
        for b in blocks:
            owner = self._owner(b.ssrc)
            if owner is not None and owner is not m and owner.room == m.room:
                fractions.append(b.loss_fraction)
        if not fractions:
            return
        m.counters.rrs += 1
        cap = max(3.0 * m.out_bps, float(self.config.start_bitrate_bps))
        m.downlink.on_loss(sum(fractions) / len(fractions), cap)
        if self.config.adaptive_layers:
            self._apply_receiver(r, m, now, out)

    def _on_nack(self, m: _Member, nack: Nack, now: float, out: list[Outgoing]) -> None:
        owner = self._owner(nack.media_ssrc)
        addr = self._addr(m)
        if owner is None or owner is m or owner.room != m.room or addr is None:
            return
        upstream: list[int] = []
        for seq in nack.lost:
            m.counters.nacks_received += 1
            pkt = self.table.resend(m.slot, nack.media_ssrc, seq)
            if pkt is not None:
                out.append((pkt, addr))
                m.counters.nacks_served += 1
                continue
            in_seq = self.table.upstream_seq(m.slot, nack.media_ssrc, seq)
            if in_seq is not None:
                upstream.append(in_seq)
        owner_addr = self._addr(owner)
        if upstream and owner_addr is not None:
            out.append((bytes(Nack.from_lost(self.ssrc, nack.media_ssrc, upstream)), owner_addr))
            m.counters.nacks_forwarded += len(upstream)

    def _waits_to_go_up(self, m: _Member, media_ssrc: int) -> bool:
        """Whether m's link from ``media_ssrc`` forwards fewer layers than it may now."""
        try:
            st = self.table.link_state(m.slot, media_ssrc)
        except (TransportError, ValueError, KeyError):
            return False
        if not st.enabled or st.current_tid is None:
            return False
        return st.max_tid is None or st.current_tid < st.max_tid

    def _pli_allowed(self, media_ssrc: int, now: float) -> bool:
        last = self._last_pli.get(media_ssrc)
        if last is not None and now - last < self.config.pli_interval_s - 1e-9:
            return False
        self._last_pli[media_ssrc] = now
        return True

    def _forward_keyframe_request(
        self, m: _Member, media_ssrc: int, packet: bytes, now: float, out: list[Outgoing]
    ) -> None:
        owner = self._owner(media_ssrc)
        if owner is None or owner is m or owner.room != m.room:
            return
        addr = self._addr(owner)
        if addr is None:
            return
        if not self._pli_allowed(media_ssrc, now):
            m.counters.plis_suppressed += 1
            return
        out.append((packet, addr))
        m.counters.plis_forwarded += 1

    def _request_keyframe(
        self, media_ssrc: int, now: float, out: list[Outgoing] | None, on_behalf: _Member
    ) -> None:
        owner = self._owner(media_ssrc)
        if owner is None or out is None:
            return
        addr = self._addr(owner)
        if addr is None or not self._pli_allowed(media_ssrc, now):
            return
        out.append((bytes(Pli(self.ssrc, media_ssrc)), addr))
        on_behalf.counters.plis_sent += 1

    # ----------------------------------------------------------------------- selection
    def _share(self, r: _Room, m: _Member) -> float:
        others = [o for o in r.members.values() if o is not m]
        videos = sum(1 for o in others if self._video_on(r, o) and self._sending_video(o))
        reserve = self.config.audio_bitrate_bps * len(others)
        return max(0.0, m.downlink_bps(self._now) - reserve) / max(1, videos)

    def _sending_video(self, m: _Member) -> bool:
        return any((lay := self._layers.get(v)) is not None and lay.total() > 0
                   for v in m.ssrcs.video)  # fmt: skip

    def _video_on(self, r: _Room, sender: _Member) -> bool:
        return self.config.last_n <= 0 or sender.pid in r.last_n_set

    def _auto_tid(self, layers: _Layers, share: float, current: int | None) -> int | None:
        top = layers.top()
        if top == 0 or layers.total() <= 0:
            return None
        best = 0
        for t in range(top + 1):
            need = layers.cumulative(t)
            up = current is None or t > current
            if need * (1.15 if up else 1.0) <= share:
                best = t
        return None if best >= top else best

    def _apply_room(self, r: _Room, now: float, out: list[Outgoing] | None = None) -> None:
        if self.config.last_n > 0:
            ranked = sorted(r.members.values(),
                            key=lambda x: (-(x.last_spoke or -1e18), x.order))  # fmt: skip
            r.last_n_set = frozenset(x.pid for x in ranked[: self.config.last_n])
        for m in r.members.values():
            self._apply_receiver(r, m, now, out)

    def _apply_receiver(
        self, r: _Room, m: _Member, now: float, out: list[Outgoing] | None
    ) -> None:
        """Program m's links: simulcast choice, last-N, temporal-layer limit."""
        share = self._share(r, m)
        for sender in r.members.values():
            if sender is m or not sender.ssrcs.video:
                continue
            on = self._video_on(r, sender)
            videos = sender.ssrcs.video
            chosen = videos[-1]
            if len(videos) > 1:  # simulcast: the highest that fits the share
                chosen = videos[0]
                for v in videos:
                    lay = self._layers.get(v)
                    if lay is not None and lay.total() <= share:
                        chosen = v
            for v in videos:
                want = on and v == chosen
                if m.enabled.get(v, True) != want:
                    self.table.set_enabled(m.slot, v, want)
                    m.enabled[v] = want
                if not want:
                    continue
                req = m.requested.get(v, m.requested.get(0))
                auto = None
                if (self.config.adaptive_layers and (m.downlink.samples or m.remb_bps)
                        and v in self._layers):
                    auto = self._auto_tid(self._layers[v], share, m.applied_tid.get(v))
                target = req if auto is None else auto if req is None else min(req, auto)
                before = m.applied_tid.get(v)
                if v not in m.applied_tid or before != target:
                    self.table.set_max_tid(m.slot, v, target)
                    m.applied_tid[v] = target
                    raised = before is not None and (target is None or target > before)
                    if raised:
                        self._raises[(v, m.room, m.pid)] = None
                        self._request_keyframe(v, now, out, on_behalf=m)

    # ----------------------------------------------------------------------- timers
    def _speakers(self, now: float, out: list[Outgoing]) -> None:
        c = self.config
        for r in self.rooms.values():
            best: _Member | None = None
            for m in r.members.values():
                st = self.table.source_stats(m.ssrcs.audio)
                count = st["level_count"]
                level = st["level_sum"] / count if count else 0.0
                m.loudness = 0.5 * m.loudness + 0.5 * level
                if m.loudness >= c.speech_threshold:
                    m.last_spoke = now
                    if best is None or m.loudness > best.loudness:
                        best = m
            for m in r.members.values():
                m.on_top = m.on_top + 1 if m is best else 0
            if best is not None and best.pid != r.speaker and best.on_top >= c.speaker_hold:
                r.speaker = best.pid
                self.speaker_changes += 1
                packet = active_speaker(self.ssrc, best.ssrcs.audio)
                for m in r.members.values():
                    if (a := self._addr(m)) is not None:
                        out.append((packet, a))
            if c.last_n > 0:
                self._apply_room(r, now, out)
        self.table.levels_reset()

    def _reports(self, now: float, out: list[Outgoing]) -> None:
        c = self.config
        dt = c.report_interval_s
        for v, lay in self._layers.items():
            try:
                lay.update(self.table.source_stats(v)["layer_bytes"], now)
            except KeyError:
                pass
        for r in self.rooms.values():
            for m in r.members.values():  # forwarded bitrate to each receiver
                st = self.table.participant_stats(m.slot)
                m.out_bps = 8.0 * (st["bytes_out"] - m.bytes_out) / dt
                m.bytes_out = st["bytes_out"]
            for m in r.members.values():
                addr = self._addr(m)
                blocks = []
                worst = 0.0
                for s in m.ssrcs.all()[:_MAX_BLOCKS]:
                    st = self.table.source_stats(s)
                    if not st["started"]:
                        continue
                    fraction, cumulative = self.table.source_report(s)
                    if s in m.ssrcs.video:
                        worst = max(worst, fraction / 256)
                    lsr, dlsr = 0, 0
                    if s in m.sr:
                        lsr, at = m.sr[s]
                        dlsr = min(0xFFFFFFFF, int((now - at) * 65536))
                    highest, jitter = st["extended_highest"], st["jitter"]
                    blocks.append(
                        ReportBlock(s, fraction, cumulative, highest, jitter, lsr, dlsr)
                    )
                if blocks:
                    m.uplink.on_loss(worst)
                if addr is None or not blocks:
                    continue
                extra = []
                if m.ssrcs.video:
                    extra.append(Remb.from_bitrate(self.ssrc, self._target(r, m),
                                                   list(m.ssrcs.video)))  # fmt: skip
                out.append((build_compound(ReceiverReport(self.ssrc, tuple(blocks)),
                                           SourceDescription.cname(self.ssrc, _CNAME), *extra),
                            addr))  # fmt: skip
            if c.adaptive_layers:
                for m in r.members.values():
                    self._apply_receiver(r, m, now, out)
            # keyframe waits that a lost keyframe left hanging: ask again
            for m in r.members.values():
                for sender in r.members.values():
                    if sender is m:
                        continue
                    for v in sender.ssrcs.video:
                        try:
                            if self.table.link_state(m.slot, v).waiting and m.registered:
                                self._request_keyframe(v, now, out, on_behalf=m)
                        except KeyError:
                            pass

    def _target(self, r: _Room, sender: _Member) -> int:
        """The bitrate to ask of ``sender`` (REMB), bits/s."""
        shares = [self._share(r, o) for o in r.members.values()
                  if o is not sender and o.registered and self._video_on(r, sender)]  # fmt: skip
        best = max(shares) if shares else sender.uplink.estimate
        target = min(sender.uplink.estimate, best)
        c = self.config
        return int(min(c.max_bitrate_bps, max(c.min_bitrate_bps, target)))

    # ----------------------------------------------------------------------- stats
    def participant_stats(self, room: str, participant: str) -> dict[str, Any]:
        """One participant's media counters (a JSON object)."""
        m = self.rooms[room].members[participant]
        out: dict[str, Any] = dict(self.table.participant_stats(m.slot))
        out.update(m.counters.to_json())
        addr = self._addr(m)
        out.update(
            registered=m.registered,
            address=None if addr is None else f"{addr[0]}:{addr[1]}",
            downlinkEstimateBps=int(m.downlink_bps(self._now)),
            downlinkLossBasedBps=m.downlink.bps,
            downlinkRembBps=m.remb_bps,
            uplinkEstimateBps=m.uplink.bps,
            forwardedBps=int(m.out_bps),
            temporalLayers={str(k): v for k, v in m.applied_tid.items()},
        )
        return out

    def room_stats(self, room: str) -> dict[str, Any]:
        """Every participant of one room (participant id -> :meth:`participant_stats`); ``{}``
        for a room without media participants."""
        r = self.rooms.get(room)
        return {} if r is None else {pid: self.participant_stats(room, pid) for pid in r.members}

    def stats(self) -> dict[str, Any]:
        """Every room and participant, plus the native path's counters (a JSON object)."""
        rooms: dict[str, Any] = {}
        for name, r in self.rooms.items():
            parts = {pid: self.participant_stats(name, pid) for pid in r.members}
            totals: dict[str, int] = {}
            for p in parts.values():
                for k in ("packets_in", "bytes_in", "packets_out", "bytes_out", "dropped_in",
                          "layer_dropped", "nacks_served", "plis_forwarded"):
                    totals[k] = totals.get(k, 0) + int(p[k])
            rooms[name] = {
                "participants": parts,
                "totals": totals,
                "activeSpeaker": r.speaker,
                "lastN": sorted(r.last_n_set) if self.config.last_n > 0 else None,
            }
        return {
            "sfuSsrc": self.ssrc,
            "counters": self.table.counters(),
            "speakerChanges": self.speaker_changes,
            "rooms": rooms,
            "departed": list(self.departed),
        }
