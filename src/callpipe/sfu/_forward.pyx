# cython: language_level=3
"""Bindings of native/src/cp_forward.c: the SFU's forwarding table and batched UDP I/O.

Low level; the media plane (:mod:`callpipe.sfu.media`) and the router
(:mod:`callpipe.sfu.router`) are the public face.  The GIL is released in :meth:`ForwardTable.pump`
(receive + route + send of whole batches) and in the benchmark tools :func:`blast` and
:func:`sink`; the small table operations run with it held.

One error gate, :func:`_check`: C status codes become ``ValueError`` (bad argument),
``KeyError`` (unknown participant/SSRC), :class:`~callpipe.errors.TransportError` (system
call, address), ``MemoryError``.  Using a closed table raises
:class:`~callpipe.errors.ClosedError`.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

from collections import namedtuple

from ..errors import ClosedError, TransportError


cdef extern from "callpipe/cp_forward.h" nogil:
    enum:
        CP_FWD_OK
        CP_FWD_ERR_ARG
        CP_FWD_ERR_NOMEM
        CP_FWD_ERR_EXISTS
        CP_FWD_ERR_NOT_FOUND
        CP_FWD_ERR_FULL
        CP_FWD_ERR_SYSTEM
        CP_FWD_ERR_ADDRESS
        CP_FWD_TOKEN_LEN
        CP_FWD_HELLO_LEN
        CP_FWD_REPLY_LEN
        CP_FWD_SLOT_BYTES
        CP_FWD_CACHE_BYTES
        CP_FWD_SEQ_WINDOW
        CP_FWD_MAX_TID
        CP_FWD_ALL_LAYERS
        CP_FWD_ADDR_BYTES
        CP_FWD_MAX_BATCH
        CP_FWD_AUDIO
        CP_FWD_VIDEO
        CP_FWD_RTX
        CP_FWD_EV_RTCP
        CP_FWD_EV_REGISTERED
        CP_FWD_EV_KEYFRAME_WAIT

    ctypedef struct cp_fwd_addr:
        uint8_t bytes[28]
        uint32_t len

    ctypedef struct cp_fwd_config:
        uint32_t max_participants
        uint32_t max_sources
        uint32_t cache_packets
        uint32_t batch
        uint8_t audio_level_id
        uint8_t frame_marking_id
        double rate_packets
        double burst_packets
        double rate_bytes
        double burst_bytes

    ctypedef struct cp_fwd_counters:
        uint64_t datagrams
        uint64_t bytes
        uint64_t malformed
        uint64_t unknown_ssrc
        uint64_t unregistered
        uint64_t wrong_address
        uint64_t flood_dropped
        uint64_t hello_ok
        uint64_t hello_bad
        uint64_t rtcp_events
        uint64_t forwarded
        uint64_t forwarded_bytes
        uint64_t layer_dropped
        uint64_t inactive_dropped
        uint64_t keyframe_dropped
        uint64_t late_dropped
        uint64_t send_errors
        uint64_t events_dropped

    ctypedef struct cp_fwd_participant_stats:
        uint64_t packets_in
        uint64_t bytes_in
        uint64_t rtcp_in
        uint64_t packets_out
        uint64_t bytes_out
        uint64_t dropped_in
        uint64_t layer_dropped
        uint64_t inactive_dropped
        uint64_t keyframe_dropped
        uint64_t hellos

    ctypedef struct cp_fwd_source_stats:
        int32_t owner
        uint8_t kind
        uint32_t clock_rate
        uint64_t packets
        uint64_t bytes
        uint64_t keyframes
        uint64_t layer_bytes[8]
        uint64_t level_sum
        uint64_t level_count
        uint64_t voice_count
        uint32_t extended_highest
        uint32_t expected
        uint32_t received
        uint32_t jitter
        uint8_t started

    ctypedef struct cp_fwd_event:
        uint8_t type
        int32_t participant
        uint32_t ssrc
        uint32_t offset
        uint32_t len

    ctypedef struct cp_fwd_pump_result:
        uint32_t datagrams
        uint32_t sent
        uint32_t batches
        int32_t error
        uint8_t drained

    ctypedef struct cp_fwd_blast_result:
        uint64_t sent
        uint64_t errors
        double seconds

    ctypedef struct cp_fwd_sink_result:
        uint64_t packets
        uint64_t bytes
        double first_s
        double last_s

    ctypedef struct cp_fwd:
        pass

    void cp_fwd_config_default(cp_fwd_config *cfg)
    cp_fwd *cp_fwd_new(const cp_fwd_config *cfg, int *status)
    void cp_fwd_free(cp_fwd *t)
    int cp_fwd_add_participant(cp_fwd *t, uint32_t room, const uint8_t *token, int32_t *slot)
    int cp_fwd_remove_participant(cp_fwd *t, int32_t slot)
    int cp_fwd_set_address(cp_fwd *t, int32_t slot, const cp_fwd_addr *addr)
    int cp_fwd_get_address(const cp_fwd *t, int32_t slot, cp_fwd_addr *addr)
    int cp_fwd_add_source(cp_fwd *t, int32_t owner, uint32_t ssrc, int kind,
                          uint32_t clock_rate, uint8_t layer)
    int cp_fwd_source_owner(const cp_fwd *t, uint32_t ssrc, int32_t *owner)
    int cp_fwd_set_max_tid(cp_fwd *t, int32_t receiver, uint32_t ssrc, uint8_t max_tid)
    int cp_fwd_set_enabled(cp_fwd *t, int32_t receiver, uint32_t ssrc, int enabled)
    int cp_fwd_link_state(const cp_fwd *t, int32_t receiver, uint32_t ssrc, uint8_t *max_tid,
                          uint8_t *current_tid, uint8_t *enabled, uint8_t *waiting,
                          uint64_t *forwarded, uint64_t *dropped)
    int cp_fwd_pump(cp_fwd *t, int fd, uint32_t max_batches, cp_fwd_pump_result *result)
    int cp_fwd_route(cp_fwd *t, const uint8_t *data, size_t len, const cp_fwd_addr *src,
                     uint64_t now_us)
    uint32_t cp_fwd_out_count(const cp_fwd *t)
    int cp_fwd_out_get(const cp_fwd *t, uint32_t i, uint8_t *dst, size_t cap, size_t *len,
                       cp_fwd_addr *to)
    void cp_fwd_out_clear(cp_fwd *t)
    uint32_t cp_fwd_event_count(const cp_fwd *t)
    int cp_fwd_event_get(const cp_fwd *t, uint32_t i, cp_fwd_event *ev, const uint8_t **data)
    void cp_fwd_events_clear(cp_fwd *t)
    int cp_fwd_upstream_seq(const cp_fwd *t, int32_t receiver, uint32_t ssrc, uint16_t out_seq,
                            uint16_t *in_seq)
    int cp_fwd_resend(cp_fwd *t, int32_t receiver, uint32_t ssrc, uint16_t out_seq,
                      uint8_t *dst, size_t cap, size_t *len)
    void cp_fwd_get_counters(const cp_fwd *t, cp_fwd_counters *c)
    int cp_fwd_participant_stats_get(const cp_fwd *t, int32_t slot, cp_fwd_participant_stats *s)
    int cp_fwd_source_stats_get(const cp_fwd *t, uint32_t ssrc, cp_fwd_source_stats *s)
    int cp_fwd_source_report(cp_fwd *t, uint32_t ssrc, uint8_t *fraction_lost,
                             int32_t *cumulative_lost)
    void cp_fwd_levels_reset(cp_fwd *t)
    int cp_fwd_last_errno(const cp_fwd *t)
    int cp_fwd_addr_make(const char *host, uint16_t port, cp_fwd_addr *out)
    int cp_fwd_addr_format(const cp_fwd_addr *a, char *host, size_t cap, uint16_t *port)
    int cp_fwd_blast(int fd, const cp_fwd_addr *to, uint32_t n_to, const uint8_t *packet,
                     size_t len, double rate_pps, double seconds, uint64_t count,
                     uint32_t batch, cp_fwd_blast_result *result)
    int cp_fwd_sink(const int *fds, uint32_t n, double seconds, double idle_s,
                    cp_fwd_sink_result *result)

    ctypedef struct cp_fwd_load_packet:
        double at_s
        uint32_t offset
        uint32_t len
        uint32_t level_offset
        uint8_t stream

    ctypedef struct cp_fwd_load_schedule:
        const uint8_t *bytes
        size_t n_bytes
        const cp_fwd_load_packet *packets
        uint32_t n_packets
        double loop_s
        uint32_t ts_per_loop[2]

    ctypedef struct cp_fwd_load_sender:
        int fd
        uint32_t ssrc[2]
        uint16_t seq[2]
        double phase_s
        int32_t level
        uint64_t sent[2]
        uint64_t errors

    ctypedef struct cp_fwd_load_send_result:
        uint64_t sent
        uint64_t errors
        double seconds
        double cpu_s
        double late_max_s
        double late_mean_s

    ctypedef struct cp_fwd_load_recv_result:
        uint64_t rtp
        uint64_t rtp_bytes
        uint64_t rtcp
        uint64_t other
        double first_s
        double last_s
        double cpu_s

    int cp_fwd_load_send(cp_fwd_load_sender *senders, uint32_t n_senders, const cp_fwd_addr *to,
                         const cp_fwd_load_schedule *schedule, double seconds,
                         cp_fwd_load_send_result *result)
    int cp_fwd_load_recv(const int *fds, uint32_t n_fds, const uint32_t *ssrcs, uint32_t n_ssrcs,
                         double seconds, double idle_s, uint64_t *received, uint64_t *span,
                         cp_fwd_load_recv_result *result)


AUDIO = CP_FWD_AUDIO
VIDEO = CP_FWD_VIDEO
RTX = CP_FWD_RTX
EV_RTCP = CP_FWD_EV_RTCP
EV_REGISTERED = CP_FWD_EV_REGISTERED
EV_KEYFRAME_WAIT = CP_FWD_EV_KEYFRAME_WAIT
TOKEN_LEN = CP_FWD_TOKEN_LEN
HELLO_LEN = CP_FWD_HELLO_LEN
REPLY_LEN = CP_FWD_REPLY_LEN
SLOT_BYTES = CP_FWD_SLOT_BYTES
CACHE_BYTES = CP_FWD_CACHE_BYTES
SEQ_WINDOW = CP_FWD_SEQ_WINDOW
MAX_TID = CP_FWD_MAX_TID
MAX_BATCH = CP_FWD_MAX_BATCH

Event = namedtuple("Event", ["type", "participant", "ssrc", "data"])
PumpResult = namedtuple("PumpResult", ["datagrams", "sent", "batches", "error", "drained"])
LinkState = namedtuple(
    "LinkState", ["max_tid", "current_tid", "enabled", "waiting", "forwarded", "dropped"]
)

_MESSAGES = {
    CP_FWD_ERR_ARG: "argument out of range",
    CP_FWD_ERR_NOMEM: "out of memory",
    CP_FWD_ERR_EXISTS: "already in the table",
    CP_FWD_ERR_NOT_FOUND: "not in the table",
    CP_FWD_ERR_FULL: "the table is full",
    CP_FWD_ERR_SYSTEM: "system call failed",
    CP_FWD_ERR_ADDRESS: "not an IPv4 or IPv6 address",
}


cdef int _check(int rc, str what) except -1:
    """The one error gate of cp_forward."""
    if rc == CP_FWD_OK:
        return 0
    text = f"{what}: {_MESSAGES.get(rc, f'error {rc}')}"
    if rc == CP_FWD_ERR_NOMEM:
        raise MemoryError(text)
    if rc == CP_FWD_ERR_NOT_FOUND:
        raise KeyError(text)
    if rc in (CP_FWD_ERR_ARG, CP_FWD_ERR_EXISTS, CP_FWD_ERR_FULL):
        raise ValueError(text)
    raise TransportError(text)


cdef int _addr(object addr, cp_fwd_addr *out) except -1:
    if not isinstance(addr, tuple) or len(addr) < 2:
        raise TypeError(f"an address is a (host, port) tuple, got {addr!r}")
    host, port = addr[0], addr[1]
    if not isinstance(host, str) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"an address is (host str, port 0..65535), got {addr!r}")
    b = host.encode("ascii", "replace")
    if b"\0" in b:
        raise ValueError(f"bad host {host!r}")
    _check(cp_fwd_addr_make(b, <uint16_t>port, out), f"address {host!r}")
    return 0


cdef object _pyaddr(const cp_fwd_addr *a):
    cdef char host[64]
    cdef uint16_t port = 0
    if a.len == 0:
        return None
    if cp_fwd_addr_format(a, host, sizeof(host), &port) != CP_FWD_OK:
        return None
    return (host.decode("ascii"), int(port))


cdef uint32_t _u32(object v, str name) except? 0xFFFFFFFF:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0xFFFFFFFF:
        raise ValueError(f"{name} must be an int in 0..2**32-1, got {v!r}")
    return <uint32_t>v


cdef int32_t _slot(object v) except? -1:
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 0x7FFFFFFF:
        raise ValueError(f"participant slot must be a non-negative int, got {v!r}")
    return <int32_t>v


cdef class ForwardTable:
    """Participants, their SSRCs and per-receiver links, and the batched forwarding loop.

    :param max_participants: participant slots (1..65536).
    :param max_sources: SSRC slots (1..2**20).
    :param cache_packets: packets cached per video SSRC for NACKs (rounded up to a power of 2).
    :param batch: datagrams per recvmmsg (1..1024).
    :param audio_level_id: RFC 8285 id of the audio level extension (0: none).
    :param frame_marking_id: RFC 8285 id of the frame marking extension (0: none).
    :param rate_packets: packets/s one participant may send, sustained (0: no limit).
    :param burst_packets: packets above that rate at once.
    :param rate_bytes: bytes/s one participant may send, sustained (0: no limit).
    :param burst_bytes: bytes above that rate at once.
    """

    cdef cp_fwd *_t
    cdef bytes _scratch

    def __init__(self, *, int max_participants=1024, int max_sources=8192,
                 int cache_packets=512, int batch=64, int audio_level_id=1,
                 int frame_marking_id=2, double rate_packets=2000.0,
                 double burst_packets=500.0, double rate_bytes=4e6, double burst_bytes=1e6):
        cdef cp_fwd_config cfg
        cdef int status = 0
        if self._t is not NULL:
            raise RuntimeError("ForwardTable is already initialised")
        if not 0 <= audio_level_id <= 255 or not 0 <= frame_marking_id <= 255:
            raise ValueError("extension ids are 0..255")
        if max_participants < 1 or max_sources < 1 or batch < 1 or cache_packets < 0:
            raise ValueError("max_participants, max_sources and batch must be >= 1")
        cp_fwd_config_default(&cfg)
        cfg.max_participants = <uint32_t>max_participants
        cfg.max_sources = <uint32_t>max_sources
        cfg.cache_packets = <uint32_t>cache_packets
        cfg.batch = <uint32_t>batch
        cfg.audio_level_id = <uint8_t>audio_level_id
        cfg.frame_marking_id = <uint8_t>frame_marking_id
        cfg.rate_packets = rate_packets
        cfg.burst_packets = burst_packets
        cfg.rate_bytes = rate_bytes
        cfg.burst_bytes = burst_bytes
        self._t = cp_fwd_new(&cfg, &status)
        if self._t is NULL:
            _check(status if status else CP_FWD_ERR_NOMEM, "ForwardTable")
        self._scratch = PyBytes_FromStringAndSize(NULL, CP_FWD_SLOT_BYTES)

    def __dealloc__(self):
        if self._t is not NULL:
            cp_fwd_free(self._t)
            self._t = NULL

    cdef cp_fwd *_get(self) except NULL:
        if self._t is NULL:
            raise ClosedError("the ForwardTable is closed")
        return self._t

    def close(self):
        """Free the table (idempotent)."""
        if self._t is not NULL:
            cp_fwd_free(self._t)
            self._t = NULL

    @property
    def closed(self):
        return self._t is NULL

    def __enter__(self):
        self._get()
        return self

    def __exit__(self, *exc):
        self.close()

    # -------------------------------------------------------------------- membership
    def add_participant(self, room, token):
        """A participant of room number ``room`` presenting ``token`` (16 bytes); its slot."""
        cdef int32_t slot = -1
        cdef uint32_t r = _u32(room, "room")
        if not isinstance(token, bytes) or len(token) != CP_FWD_TOKEN_LEN:
            raise ValueError(f"a media token is {CP_FWD_TOKEN_LEN} bytes")
        _check(cp_fwd_add_participant(self._get(), r, <const uint8_t *>PyBytes_AS_STRING(token),
                                      &slot), "add participant")
        return int(slot)

    def remove_participant(self, slot):
        """Forget a participant, its SSRCs and its links."""
        _check(cp_fwd_remove_participant(self._get(), _slot(slot)), f"participant {slot}")

    def set_address(self, slot, addr):
        """Register ``(host, port)`` for a participant (None: forget its address)."""
        cdef cp_fwd_addr a
        a.len = 0
        if addr is not None:
            _addr(addr, &a)
        _check(cp_fwd_set_address(self._get(), _slot(slot), &a), f"participant {slot}")

    def address(self, slot):
        """The participant's registered ``(host, port)``, or None."""
        cdef cp_fwd_addr a
        _check(cp_fwd_get_address(self._get(), _slot(slot), &a), f"participant {slot}")
        return _pyaddr(&a)

    def add_source(self, slot, ssrc, int kind, int clock_rate, int layer=0):
        """An SSRC the participant sends (``kind`` AUDIO/VIDEO/RTX, ``clock_rate`` in Hz)."""
        if not 0 <= layer <= 255:
            raise ValueError("layer is 0..255")
        _check(cp_fwd_add_source(self._get(), _slot(slot), _u32(ssrc, "ssrc"), kind,
                                 <uint32_t>max(0, clock_rate), <uint8_t>layer),
               f"SSRC {ssrc}")

    def source_owner(self, ssrc):
        """The slot of the participant that sends ``ssrc``, or None."""
        cdef int32_t owner = -1
        if cp_fwd_source_owner(self._get(), _u32(ssrc, "ssrc"), &owner) != CP_FWD_OK:
            return None
        return int(owner)

    def set_max_tid(self, receiver, ssrc, max_tid):
        """Highest temporal layer ``receiver`` gets of ``ssrc`` (0: every video SSRC it
        gets); ``max_tid`` None = all layers."""
        cdef int v = CP_FWD_ALL_LAYERS if max_tid is None else max_tid
        if max_tid is not None and not 0 <= v <= CP_FWD_MAX_TID:
            raise ValueError(f"max_tid must be 0..{CP_FWD_MAX_TID} or None, got {max_tid!r}")
        _check(cp_fwd_set_max_tid(self._get(), _slot(receiver), _u32(ssrc, "ssrc"), <uint8_t>v),
               f"link {receiver} <- {ssrc}")

    def set_enabled(self, receiver, ssrc, bint enabled):
        """Forward ``ssrc`` to ``receiver`` or not (last-N, simulcast layer choice)."""
        _check(cp_fwd_set_enabled(self._get(), _slot(receiver), _u32(ssrc, "ssrc"), enabled),
               f"link {receiver} <- {ssrc}")

    def link_state(self, receiver, ssrc):
        """:class:`LinkState` of one link (max_tid/current_tid None = all layers)."""
        cdef uint8_t mt = 0, ct = 0, en = 0, wt = 0
        cdef uint64_t fw = 0, dr = 0
        _check(cp_fwd_link_state(self._get(), _slot(receiver), _u32(ssrc, "ssrc"), &mt, &ct,
                                 &en, &wt, &fw, &dr), f"link {receiver} <- {ssrc}")
        return LinkState(None if mt == CP_FWD_ALL_LAYERS else int(mt),
                         None if ct == CP_FWD_ALL_LAYERS else int(ct),
                         bool(en), bool(wt), int(fw), int(dr))

    # -------------------------------------------------------------------- hot path
    def pump(self, int fd, int max_batches=16):
        """Receive, route and send whole batches on socket ``fd`` (GIL released).

        Returns a :class:`PumpResult`; take the events with :meth:`events` afterwards.
        """
        cdef cp_fwd *t = self._get()
        cdef cp_fwd_pump_result r
        cdef int rc
        if fd < 0 or max_batches < 1:
            raise ValueError("fd must be >= 0 and max_batches >= 1")
        with nogil:
            rc = cp_fwd_pump(t, fd, <uint32_t>max_batches, &r)
        _check(rc, "pump")
        return PumpResult(int(r.datagrams), int(r.sent), int(r.batches), int(r.error),
                          bool(r.drained))

    def route(self, data, addr, uint64_t now_us):
        """Route one datagram from ``addr`` without a socket (sans-I/O).

        :returns: the datagrams to send, ``[(bytes, (host, port)), ...]``; events are kept
            for :meth:`events`.
        """
        cdef cp_fwd *t = self._get()
        cdef cp_fwd_addr a, to
        cdef bytes b = bytes(data)
        cdef size_t n, i, count
        _addr(addr, &a)
        out = []
        try:
            _check(cp_fwd_route(t, <const uint8_t *>PyBytes_AS_STRING(b), <size_t>len(b), &a,
                                now_us), "route")
            count = cp_fwd_out_count(t)
            for i in range(count):
                cp_fwd_out_get(t, <uint32_t>i, NULL, 0, &n, &to)
                pkt = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>n)
                _check(cp_fwd_out_get(t, <uint32_t>i, <uint8_t *>PyBytes_AS_STRING(pkt), n,
                                      &n, &to), "route output")
                out.append((pkt, _pyaddr(&to)))
        finally:
            cp_fwd_out_clear(t)
        return out

    def events(self):
        """The events recorded since the last call (and clears them): :class:`Event` s."""
        cdef cp_fwd *t = self._get()
        cdef cp_fwd_event ev
        cdef const uint8_t *data
        cdef uint32_t i, n = cp_fwd_event_count(t)
        out = []
        for i in range(n):
            cp_fwd_event_get(t, i, &ev, &data)
            payload = PyBytes_FromStringAndSize(<const char *>data, ev.len) if ev.len else b""
            out.append(Event(int(ev.type), int(ev.participant), int(ev.ssrc), payload))
        cp_fwd_events_clear(t)
        return out

    # -------------------------------------------------------------------- NACK
    def upstream_seq(self, receiver, ssrc, out_seq):
        """The sender's sequence number of what ``receiver`` got as ``out_seq``, or None."""
        cdef uint16_t in_seq = 0
        if not 0 <= out_seq <= 0xFFFF:
            raise ValueError("sequence numbers are 0..65535")
        if cp_fwd_upstream_seq(self._get(), _slot(receiver), _u32(ssrc, "ssrc"),
                               <uint16_t>out_seq, &in_seq) != 1:
            return None
        return int(in_seq)

    def resend(self, receiver, ssrc, out_seq):
        """Packet ``out_seq`` of ``ssrc`` as ``receiver`` numbers it, from the cache, or None."""
        cdef size_t n = 0
        cdef int found
        if not 0 <= out_seq <= 0xFFFF:
            raise ValueError("sequence numbers are 0..65535")
        found = cp_fwd_resend(self._get(), _slot(receiver), _u32(ssrc, "ssrc"),
                              <uint16_t>out_seq, <uint8_t *>PyBytes_AS_STRING(self._scratch),
                              CP_FWD_SLOT_BYTES, &n)
        if found != 1:
            return None
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(self._scratch), <Py_ssize_t>n)

    # -------------------------------------------------------------------- stats
    def counters(self):
        """Table-wide counters (a dict of ints)."""
        cdef cp_fwd_counters c
        cp_fwd_get_counters(self._get(), &c)
        return dict(c)

    def participant_stats(self, slot):
        """One participant's counters (a dict of ints)."""
        cdef cp_fwd_participant_stats s
        _check(cp_fwd_participant_stats_get(self._get(), _slot(slot), &s), f"participant {slot}")
        return dict(s)

    def source_stats(self, ssrc):
        """One SSRC's counters and RFC 3550 receive statistics (a dict)."""
        cdef cp_fwd_source_stats s
        _check(cp_fwd_source_stats_get(self._get(), _u32(ssrc, "ssrc"), &s), f"SSRC {ssrc}")
        d = dict(s)
        d["layer_bytes"] = [int(s.layer_bytes[i]) for i in range(8)]
        return d

    def source_report(self, ssrc):
        """(fraction_lost in 1/256, cumulative_lost) for a receiver report; starts a new
        interval."""
        cdef uint8_t f = 0
        cdef int32_t c = 0
        _check(cp_fwd_source_report(self._get(), _u32(ssrc, "ssrc"), &f, &c), f"SSRC {ssrc}")
        return int(f), int(c)

    def levels_reset(self):
        """Start new audio-level sums for every SSRC."""
        cp_fwd_levels_reset(self._get())

    def last_errno(self):
        """errno of the last failed send or receive (0: none)."""
        return int(cp_fwd_last_errno(self._get()))


def blast(int fd, addr, packet, double rate_pps, double seconds, count=0, int batch=32):
    """Send ``packet`` (RTP; its sequence number increments) to ``addr`` -- one (host, port)
    or a list of them, in turn -- as fast as ``rate_pps`` allows (0: no limit) for ``seconds``
    or ``count`` datagrams (GIL released).

    :returns: (sent, errors, seconds spent).
    """
    cdef cp_fwd_blast_result r
    cdef bytes b = bytes(packet)
    cdef uint64_t c = <uint64_t>count
    cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(b)
    cdef size_t n = <size_t>len(b)
    cdef int rc
    cdef uint32_t i, k
    addrs = [addr] if isinstance(addr, tuple) else list(addr)
    k = <uint32_t>len(addrs)
    if k == 0 or k > 4096:
        raise ValueError("blast needs 1..4096 addresses")
    cdef cp_fwd_addr *a = <cp_fwd_addr *>malloc(k * sizeof(cp_fwd_addr))
    if a is NULL:
        raise MemoryError()
    try:
        for i in range(k):
            _addr(addrs[i], &a[i])
        with nogil:
            rc = cp_fwd_blast(fd, a, k, p, n, rate_pps, seconds, c, <uint32_t>batch, &r)
    finally:
        free(a)
    _check(rc, "blast")
    return int(r.sent), int(r.errors), float(r.seconds)


def sink(fds, double seconds, double idle_s=0.5):
    """Count datagrams arriving on the sockets ``fds`` for ``seconds`` (or until ``idle_s``
    pass without one after the first), GIL released.

    :returns: (packets, bytes, first arrival s, last arrival s) on CLOCK_MONOTONIC.
    """
    cdef cp_fwd_sink_result r
    cdef list lst = [int(f) for f in fds]
    cdef uint32_t n = <uint32_t>len(lst)
    cdef int *arr
    cdef int rc
    cdef uint32_t i
    if n == 0:
        raise ValueError("no sockets")
    arr = <int *>malloc(n * sizeof(int))
    if arr is NULL:
        raise MemoryError()
    try:
        for i in range(n):
            arr[i] = lst[i]
        with nogil:
            rc = cp_fwd_sink(arr, n, seconds, idle_s, &r)
    finally:
        free(arr)
    _check(rc, "sink")
    return int(r.packets), int(r.bytes), float(r.first_s), float(r.last_s)


LoadSendResult = namedtuple(
    "LoadSendResult",
    ["sent", "errors", "seconds", "cpu_s", "late_max_s", "late_mean_s", "per_sender"],
)
LoadRecvResult = namedtuple(
    "LoadRecvResult",
    ["rtp", "rtp_bytes", "rtcp", "other", "first_s", "last_s", "cpu_s", "received", "span"],
)


def load_send(senders, addr, packet_bytes, packets, double loop_s, ts_per_loop,
              double seconds):
    """Play a schedule of RTP packets from many sockets in real time (GIL released); the
    load generator of ``callpipe bench sfu --capacity`` (see cp_forward.h).

    :param senders: ``(fd, (ssrc0, ssrc1), (first_seq0, first_seq1), phase_s, level)`` per
        sender: its socket, SSRC and first sequence number per stream, its start offset (s)
        and the audio-level byte written into its packets (-1: as built).
    :param addr: (host, port) every packet goes to.
    :param packet_bytes: the packets of one loop, back to back.
    :param packets: ``(at_s, offset, length, level_offset, stream)`` per packet, in send
        order: send time within the loop (s), its bytes in ``packet_bytes``, the offset of its
        audio-level byte (0: none), stream 0 or 1.
    :param loop_s: length of one loop, s.
    :param ts_per_loop: RTP timestamp advance per loop for stream 0 and 1.
    :param seconds: how long to play, s.
    :returns: LoadSendResult (totals, wall and CPU s, lateness in s, and per sender
        ``(sent0, sent1, errors)``).
    """
    cdef bytes b = bytes(packet_bytes)
    cdef list ss = list(senders)
    cdef list pk = list(packets)
    cdef uint32_t n = <uint32_t>len(ss)
    cdef uint32_t m = <uint32_t>len(pk)
    cdef uint32_t i
    cdef int rc
    cdef cp_fwd_addr to
    cdef cp_fwd_load_schedule sch
    cdef cp_fwd_load_send_result r
    if n == 0 or len(ss) > 65536:
        raise ValueError("load_send needs 1..65536 senders")
    if m == 0 or len(pk) > 0xFFFFFFF:
        raise ValueError("load_send needs at least one packet")
    tl = tuple(ts_per_loop)
    if len(tl) != 2:
        raise ValueError("ts_per_loop is (stream 0, stream 1)")
    _addr(addr, &to)
    cdef cp_fwd_load_sender *sp = <cp_fwd_load_sender *>malloc(n * sizeof(cp_fwd_load_sender))
    cdef cp_fwd_load_packet *pp = <cp_fwd_load_packet *>malloc(m * sizeof(cp_fwd_load_packet))
    try:
        if sp is NULL or pp is NULL:
            raise MemoryError()
        for i in range(n):
            fd, ssrc, seq, phase, level = ss[i]
            sp[i].fd = fd
            sp[i].ssrc[0] = _u32(ssrc[0], "ssrc")
            sp[i].ssrc[1] = _u32(ssrc[1], "ssrc")
            sp[i].seq[0] = <uint16_t>(seq[0] & 0xFFFF)
            sp[i].seq[1] = <uint16_t>(seq[1] & 0xFFFF)
            sp[i].phase_s = phase
            sp[i].level = level
        for i in range(m):
            at, off, length, level_off, stream = pk[i]
            pp[i].at_s = at
            pp[i].offset = _u32(off, "offset")
            pp[i].len = _u32(length, "length")
            pp[i].level_offset = _u32(level_off, "level_offset")
            pp[i].stream = <uint8_t>(1 if stream else 0)
            if stream not in (0, 1):
                raise ValueError(f"stream is 0 or 1, got {stream!r}")
        sch.bytes = <const uint8_t *>PyBytes_AS_STRING(b)
        sch.n_bytes = <size_t>len(b)
        sch.packets = pp
        sch.n_packets = m
        sch.loop_s = loop_s
        sch.ts_per_loop[0] = _u32(tl[0], "ts_per_loop")
        sch.ts_per_loop[1] = _u32(tl[1], "ts_per_loop")
        with nogil:
            rc = cp_fwd_load_send(sp, n, &to, &sch, seconds, &r)
        _check(rc, "load_send")
        per = [(int(sp[i].sent[0]), int(sp[i].sent[1]), int(sp[i].errors)) for i in range(n)]
    finally:
        free(sp)
        free(pp)
    return LoadSendResult(int(r.sent), int(r.errors), float(r.seconds), float(r.cpu_s),
                          float(r.late_max_s), float(r.late_mean_s), per)


def load_recv(fds, ssrcs, double seconds, double idle_s=0.5):
    """Count the RTP arriving on each socket per SSRC (GIL released), for ``seconds`` or until
    ``idle_s`` pass without RTP after the first; the counting receiver of ``callpipe bench sfu
    --capacity``.

    :param fds: the sockets.
    :param ssrcs: the (distinct) SSRCs to count.
    :returns: LoadRecvResult: totals (RTP of the SSRCs, its bytes, RTCP, other datagrams),
        first/last RTP arrival and CPU time (s), and per socket a list per SSRC of packets
        ``received`` and sequence ``span`` (highest - lowest + 1; span - received = gaps).
    """
    cdef list fl = [int(f) for f in fds]
    cdef list sl = list(ssrcs)
    cdef uint32_t n = <uint32_t>len(fl)
    cdef uint32_t k = <uint32_t>len(sl)
    cdef uint32_t i, j
    cdef int rc
    cdef cp_fwd_load_recv_result r
    if n == 0 or len(fl) > 65536:
        raise ValueError("load_recv needs 1..65536 sockets")
    if k == 0 or len(sl) > (1 << 20):
        raise ValueError("load_recv needs 1..2**20 SSRCs")
    if <uint64_t>n * k > (1 << 26):
        raise ValueError("too many sockets x SSRCs")
    cdef int *fa = <int *>malloc(n * sizeof(int))
    cdef uint32_t *sa = <uint32_t *>malloc(k * sizeof(uint32_t))
    cdef uint64_t *got = <uint64_t *>malloc(<size_t>n * k * sizeof(uint64_t))
    cdef uint64_t *span = <uint64_t *>malloc(<size_t>n * k * sizeof(uint64_t))
    try:
        if fa is NULL or sa is NULL or got is NULL or span is NULL:
            raise MemoryError()
        for i in range(n):
            fa[i] = fl[i]
        for j in range(k):
            sa[j] = _u32(sl[j], "ssrc")
        with nogil:
            rc = cp_fwd_load_recv(fa, n, sa, k, seconds, idle_s, got, span, &r)
        _check(rc, "load_recv")
        received = [[int(got[i * k + j]) for j in range(k)] for i in range(n)]
        spans = [[int(span[i * k + j]) for j in range(k)] for i in range(n)]
    finally:
        free(fa)
        free(sa)
        free(got)
        free(span)
    return LoadRecvResult(int(r.rtp), int(r.rtp_bytes), int(r.rtcp), int(r.other),
                          float(r.first_s), float(r.last_s), float(r.cpu_s), received, spans)
