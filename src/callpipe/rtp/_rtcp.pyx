# cython: language_level=3
"""Bindings of native/src/cp_rtcp.c (RTCP: RFC 3550, RFC 4585, RFC 5104, RFC 5506, REMB).

Low level; the public API with named packet objects is :mod:`callpipe.rtp.rtcp`.  Inputs are any
bytes-like objects (read through the buffer protocol, held for the duration of the call);
outputs are ``bytes`` and plain tuples (shapes documented on :func:`parse`).

The GIL is released around the batch calls: the validating walk over a whole compound packet
(:func:`parse`) and NACK packing/unpacking of sequence-number lists.  The writers of single
packets (tens of bytes) run with the GIL held: releasing it would cost more than the call.

One error gate, :func:`_check`: C status codes become :class:`callpipe.errors.TransportError`
(malformed packets) or ``ValueError`` (a writer given an out-of-range value).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

from ..errors import TransportError


cdef extern from "Python.h":
    int PyObject_GenericSetAttr(object o, object name, object value) except -1


cdef extern from "callpipe/cp_rtcp.h" nogil:
    enum:
        CP_RTCP_OK
        CP_RTCP_ERR_EMPTY
        CP_RTCP_ERR_TRUNCATED
        CP_RTCP_ERR_VERSION
        CP_RTCP_ERR_TYPE
        CP_RTCP_ERR_PADDING
        CP_RTCP_ERR_FIRST
        CP_RTCP_ERR_LENGTH
        CP_RTCP_ERR_SDES
        CP_RTCP_ERR_BYE
        CP_RTCP_ERR_FEEDBACK
        CP_RTCP_ERR_RESERVED
        CP_RTCP_ERR_TOO_MANY
        CP_RTCP_ERR_BUFFER
        CP_RTCP_ERR_ARG
        CP_RTCP_KIND_SR
        CP_RTCP_KIND_RR
        CP_RTCP_KIND_SDES
        CP_RTCP_KIND_BYE
        CP_RTCP_KIND_APP
        CP_RTCP_KIND_NACK
        CP_RTCP_KIND_PLI
        CP_RTCP_KIND_FIR
        CP_RTCP_KIND_REMB
        CP_RTCP_KIND_FEEDBACK
        CP_RTCP_KIND_OTHER
        CP_RTCP_REDUCED_SIZE
        CP_RTCP_MAX_COUNT
        CP_RTCP_MAX_PACKET
        CP_RTCP_MAX_REMB_SSRCS

    ctypedef struct cp_rtcp_packet:
        uint32_t offset
        uint32_t size
        uint32_t body
        uint32_t body_len
        uint32_t ext
        uint32_t ext_len
        uint32_t items
        uint32_t ssrc
        uint32_t media_ssrc
        uint32_t padding
        uint8_t type
        uint8_t count
        uint8_t kind
        uint8_t has_reason

    ctypedef struct cp_rtcp_sender_info:
        uint64_t ntp_timestamp
        uint32_t rtp_timestamp
        uint32_t packet_count
        uint32_t octet_count

    ctypedef struct cp_rtcp_report_block:
        uint32_t ssrc
        uint8_t fraction_lost
        int32_t cumulative_lost
        uint32_t highest_seq
        uint32_t jitter
        uint32_t lsr
        uint32_t dlsr

    ctypedef struct cp_rtcp_sdes_item:
        uint32_t ssrc
        uint32_t offset
        uint8_t chunk
        uint8_t type
        uint8_t length

    ctypedef struct cp_rtcp_fir_entry:
        uint32_t ssrc
        uint8_t seq_nr

    int cp_rtcp_parse(const uint8_t *data, size_t len, int flags, cp_rtcp_packet *out,
                      size_t cap, size_t *n, size_t *where)
    void cp_rtcp_sender_info_get(const uint8_t *data, const cp_rtcp_packet *p,
                                 cp_rtcp_sender_info *out)
    void cp_rtcp_report_block_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i,
                                  cp_rtcp_report_block *out)
    uint32_t cp_rtcp_ssrc_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i)
    int cp_rtcp_sdes_items(const uint8_t *data, const cp_rtcp_packet *p, cp_rtcp_sdes_item *out,
                           size_t cap, size_t *n)
    void cp_rtcp_nack_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i, uint16_t *pid,
                          uint16_t *blp)
    void cp_rtcp_fir_get(const uint8_t *data, const cp_rtcp_packet *p, size_t i,
                         cp_rtcp_fir_entry *out)
    void cp_rtcp_remb_get(const uint8_t *data, const cp_rtcp_packet *p, uint8_t *exponent,
                          uint32_t *mantissa)
    int cp_rtcp_nack_pack(const uint16_t *seqs, size_t n, uint16_t *pids, uint16_t *blps,
                          size_t cap, size_t *n_items)
    int cp_rtcp_nack_unpack(const uint16_t *pids, const uint16_t *blps, size_t n_items,
                            uint16_t *seqs, size_t cap, size_t *n)
    int cp_rtcp_write_sr(uint8_t *out, size_t out_cap, uint32_t ssrc,
                         const cp_rtcp_sender_info *si, const cp_rtcp_report_block *blocks,
                         size_t n, const uint8_t *ext, size_t ext_len, size_t *written)
    int cp_rtcp_write_rr(uint8_t *out, size_t out_cap, uint32_t ssrc,
                         const cp_rtcp_report_block *blocks, size_t n, const uint8_t *ext,
                         size_t ext_len, size_t *written)
    int cp_rtcp_write_sdes(uint8_t *out, size_t out_cap, const cp_rtcp_sdes_item *items,
                           size_t n, const uint8_t *text, size_t text_len, size_t *written)
    int cp_rtcp_write_bye(uint8_t *out, size_t out_cap, const uint32_t *ssrcs, size_t n,
                          int has_reason, const uint8_t *reason, size_t reason_len,
                          size_t *written)
    int cp_rtcp_write_app(uint8_t *out, size_t out_cap, uint8_t subtype, uint32_t ssrc,
                          const uint8_t *name, const uint8_t *data, size_t data_len,
                          size_t *written)
    int cp_rtcp_write_nack(uint8_t *out, size_t out_cap, uint32_t sender_ssrc,
                           uint32_t media_ssrc, const uint16_t *pids, const uint16_t *blps,
                           size_t n, size_t *written)
    int cp_rtcp_write_pli(uint8_t *out, size_t out_cap, uint32_t sender_ssrc,
                          uint32_t media_ssrc, size_t *written)
    int cp_rtcp_write_fir(uint8_t *out, size_t out_cap, uint32_t sender_ssrc,
                          uint32_t media_ssrc, const cp_rtcp_fir_entry *entries, size_t n,
                          size_t *written)
    int cp_rtcp_write_remb(uint8_t *out, size_t out_cap, uint32_t sender_ssrc,
                           uint32_t media_ssrc, uint8_t exponent, uint32_t mantissa,
                           const uint32_t *ssrcs, size_t n, size_t *written)
    int cp_rtcp_write_raw(uint8_t *out, size_t out_cap, uint8_t type, uint8_t count,
                          const uint8_t *body, size_t body_len, size_t *written)


KIND_SR = CP_RTCP_KIND_SR
KIND_RR = CP_RTCP_KIND_RR
KIND_SDES = CP_RTCP_KIND_SDES
KIND_BYE = CP_RTCP_KIND_BYE
KIND_APP = CP_RTCP_KIND_APP
KIND_NACK = CP_RTCP_KIND_NACK
KIND_PLI = CP_RTCP_KIND_PLI
KIND_FIR = CP_RTCP_KIND_FIR
KIND_REMB = CP_RTCP_KIND_REMB
KIND_FEEDBACK = CP_RTCP_KIND_FEEDBACK
KIND_OTHER = CP_RTCP_KIND_OTHER
MAX_COUNT = CP_RTCP_MAX_COUNT
MAX_PACKET = CP_RTCP_MAX_PACKET
MAX_REMB_SSRCS = CP_RTCP_MAX_REMB_SSRCS

# Status codes, so that tests can name the exact failure (TransportError.code).
ERR_EMPTY = CP_RTCP_ERR_EMPTY
ERR_TRUNCATED = CP_RTCP_ERR_TRUNCATED
ERR_VERSION = CP_RTCP_ERR_VERSION
ERR_TYPE = CP_RTCP_ERR_TYPE
ERR_PADDING = CP_RTCP_ERR_PADDING
ERR_FIRST = CP_RTCP_ERR_FIRST
ERR_LENGTH = CP_RTCP_ERR_LENGTH
ERR_SDES = CP_RTCP_ERR_SDES
ERR_BYE = CP_RTCP_ERR_BYE
ERR_FEEDBACK = CP_RTCP_ERR_FEEDBACK
ERR_RESERVED = CP_RTCP_ERR_RESERVED
ERR_TOO_MANY = CP_RTCP_ERR_TOO_MANY

cdef dict _MESSAGES = {
    CP_RTCP_ERR_EMPTY: "empty RTCP packet",
    CP_RTCP_ERR_TRUNCATED: "truncated RTCP packet (shorter than its header or length field)",
    CP_RTCP_ERR_VERSION: "RTCP version is not 2",
    CP_RTCP_ERR_TYPE: "not an RTCP packet type (must be 192..223)",
    CP_RTCP_ERR_PADDING: "bad RTCP padding (P bit on a packet that is not last, or a padding "
                         "count that is zero, not a multiple of 4 or longer than the packet)",
    CP_RTCP_ERR_FIRST: "compound RTCP packet does not start with SR or RR",
    CP_RTCP_ERR_LENGTH: "RTCP length too short for its report blocks, SSRCs or fixed fields",
    CP_RTCP_ERR_SDES: "malformed RTCP SDES chunk (item overruns the packet, missing END, "
                      "non-zero padding or bytes after the last chunk)",
    CP_RTCP_ERR_BYE: "malformed RTCP BYE reason (overruns the packet or non-zero padding)",
    CP_RTCP_ERR_FEEDBACK: "malformed RTCP feedback FCI (empty NACK, PLI with FCI, FIR not a "
                          "multiple of 8 bytes, or REMB SSRC count mismatch)",
    CP_RTCP_ERR_RESERVED: "reserved bits of an RTCP FIR entry are not zero",
    CP_RTCP_ERR_TOO_MANY: "too many RTCP packets (internal error)",
    CP_RTCP_ERR_BUFFER: "RTCP output buffer too small (internal error)",
    CP_RTCP_ERR_ARG: "RTCP field out of range",
}


class RtcpParseError(TransportError):
    """A malformed RTCP packet: ``code`` (an ``ERR_*`` value), ``offset`` (bytes) of the bad
    packet and ``index`` (its position in the compound)."""

    def __init__(self, message, code, offset, index):
        super().__init__(message)
        self.code = code
        self.offset = offset
        self.index = index


cdef int _check(int rc) except -1:
    """The error gate for the writers: raise for a C status, else return 0."""
    if rc == CP_RTCP_OK:
        return 0
    msg = _MESSAGES.get(rc, f"RTCP error {rc}")
    if rc == CP_RTCP_ERR_ARG:
        raise ValueError(msg)
    raise TransportError(msg)


cdef inline int _get(object obj, Py_buffer *view, str name) except -1:
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except TypeError:
        raise TypeError(f"{name} must be bytes-like, got {type(obj).__name__}") from None
    return 0


cdef inline bytes _slice(const uint8_t *p, size_t n):
    return PyBytes_FromStringAndSize(<const char *>p, n)


cdef object _decode(const uint8_t *d, cp_rtcp_packet *p):
    """One validated packet as a tuple (see :func:`parse`)."""
    cdef cp_rtcp_sender_info si
    cdef cp_rtcp_report_block b
    cdef cp_rtcp_fir_entry fe
    cdef cp_rtcp_sdes_item *items
    cdef uint16_t pid, blp
    cdef uint8_t exp
    cdef uint32_t mant
    cdef size_t i, n = 0
    cdef int k = p.kind
    if k == CP_RTCP_KIND_SR or k == CP_RTCP_KIND_RR:
        blocks = []
        for i in range(p.items):
            cp_rtcp_report_block_get(d, p, i, &b)
            blocks.append((b.ssrc, b.fraction_lost, b.cumulative_lost, b.highest_seq, b.jitter,
                           b.lsr, b.dlsr))
        ext = _slice(d + p.ext, p.ext_len)
        if k == CP_RTCP_KIND_RR:
            return (k, p.ssrc, blocks, ext)
        cp_rtcp_sender_info_get(d, p, &si)
        return (k, p.ssrc, si.ntp_timestamp, si.rtp_timestamp, si.packet_count, si.octet_count,
                blocks, ext)
    if k == CP_RTCP_KIND_SDES:
        cap = p.body_len // 2 + 1
        items = <cp_rtcp_sdes_item *>malloc(cap * sizeof(cp_rtcp_sdes_item))
        if items == NULL:
            raise MemoryError()
        try:
            if cp_rtcp_sdes_items(d, p, items, cap, &n) != CP_RTCP_OK:
                raise TransportError("RTCP SDES changed under the parser (internal error)")
            out = [(items[i].chunk, items[i].ssrc, items[i].type,
                    _slice(d + items[i].offset, items[i].length)) for i in range(n)]
        finally:
            free(items)
        return (k, out)
    if k == CP_RTCP_KIND_BYE:
        ssrcs = [cp_rtcp_ssrc_get(d, p, i) for i in range(p.items)]
        reason = _slice(d + p.ext, p.ext_len) if p.has_reason else None
        return (k, ssrcs, reason)
    if k == CP_RTCP_KIND_APP:
        return (k, p.count, p.ssrc, _slice(d + p.ext, 4), _slice(d + p.body, p.body_len))
    if k == CP_RTCP_KIND_NACK:
        out = []
        for i in range(p.items):
            cp_rtcp_nack_get(d, p, i, &pid, &blp)
            out.append((pid, blp))
        return (k, p.ssrc, p.media_ssrc, out)
    if k == CP_RTCP_KIND_PLI:
        return (k, p.ssrc, p.media_ssrc)
    if k == CP_RTCP_KIND_FIR:
        out = []
        for i in range(p.items):
            cp_rtcp_fir_get(d, p, i, &fe)
            out.append((fe.ssrc, fe.seq_nr))
        return (k, p.ssrc, p.media_ssrc, out)
    if k == CP_RTCP_KIND_REMB:
        cp_rtcp_remb_get(d, p, &exp, &mant)
        ssrcs = [cp_rtcp_ssrc_get(d, p, i) for i in range(p.items)]
        return (k, p.ssrc, p.media_ssrc, exp, mant, ssrcs)
    if k == CP_RTCP_KIND_FEEDBACK:
        return (k, p.type, p.count, p.ssrc, p.media_ssrc, _slice(d + p.body, p.body_len))
    return (k, p.type, p.count, _slice(d + p.body, p.body_len))


def parse(data, bint reduced_size=True):
    """Validate ``data`` as one compound (or, with ``reduced_size``, RFC 5506 reduced-size)
    RTCP packet.  Returns ``(packets, padding)``: ``padding`` is the last packet's padding
    octets (``b""`` when none) and each packet is a tuple whose first item is its ``KIND_*``:

    * SR: ``(k, ssrc, ntp, rtp_ts, packets, octets, blocks, ext)``; RR: ``(k, ssrc, blocks,
      ext)``; a block is ``(ssrc, fraction, cumulative, highest_seq, jitter, lsr, dlsr)``
    * SDES: ``(k, [(chunk, ssrc, type, text), ...])`` (type 0 = a chunk with no items)
    * BYE: ``(k, ssrcs, reason or None)``; APP: ``(k, subtype, ssrc, name, data)``
    * NACK: ``(k, sender, media, [(pid, blp), ...])``; PLI: ``(k, sender, media)``;
      FIR: ``(k, sender, media, [(ssrc, seq_nr), ...])``;
      REMB: ``(k, sender, media, exponent, mantissa, ssrcs)``
    * other feedback: ``(k, type, fmt, sender, media, fci)``; other: ``(k, type, count, body)``

    Raises :class:`RtcpParseError` (a TransportError) naming the problem and where it is.
    """
    cdef Py_buffer v
    cdef cp_rtcp_packet *pk
    cdef size_t cap, n = 0, where = 0, i
    cdef int rc
    cdef int flags = CP_RTCP_REDUCED_SIZE if reduced_size else 0
    _get(data, &v, "data")
    try:
        cap = <size_t>v.len // 4 + 1
        pk = <cp_rtcp_packet *>malloc(cap * sizeof(cp_rtcp_packet))
        if pk == NULL:
            raise MemoryError()
        try:
            with nogil:
                rc = cp_rtcp_parse(<const uint8_t *>v.buf, <size_t>v.len, flags, pk, cap, &n,
                                   &where)
            if rc != CP_RTCP_OK:
                msg = _MESSAGES.get(rc, f"RTCP error {rc}")
                raise RtcpParseError(
                    f"{msg} (packet {n} at byte {where} of {v.len})", rc, where, n)
            d = <const uint8_t *>v.buf
            packets = [_decode(d, &pk[i]) for i in range(n)]
            padding = b""
            if n and pk[n - 1].padding:
                padding = _slice(d + pk[n - 1].offset + pk[n - 1].size - pk[n - 1].padding,
                                 pk[n - 1].padding)
            return packets, padding
        finally:
            free(pk)
    finally:
        PyBuffer_Release(&v)


cdef cp_rtcp_report_block *_blocks(list blocks) except NULL:
    cdef size_t n = len(blocks)
    cdef cp_rtcp_report_block *out
    if n > CP_RTCP_MAX_COUNT:
        raise ValueError(f"at most {CP_RTCP_MAX_COUNT} report blocks per packet, got {n}")
    out = <cp_rtcp_report_block *>malloc((n + 1) * sizeof(cp_rtcp_report_block))
    if out == NULL:
        raise MemoryError()
    try:
        for i, blk in enumerate(blocks):
            (out[i].ssrc, out[i].fraction_lost, out[i].cumulative_lost, out[i].highest_seq,
             out[i].jitter, out[i].lsr, out[i].dlsr) = blk
    except BaseException:
        free(out)
        raise
    return out


cdef bytes _finish(bytearray buf, int rc, size_t written):
    _check(rc)
    return bytes(buf[:written])


def write_sr(uint32_t ssrc, uint64_t ntp, uint32_t rtp_ts, uint32_t packets, uint32_t octets,
             list blocks, const uint8_t[::1] ext):
    """One SR packet (``blocks`` as in :func:`parse`; ``ext`` a multiple of 4 bytes)."""
    cdef cp_rtcp_sender_info si
    cdef size_t w = 0
    si.ntp_timestamp = ntp
    si.rtp_timestamp = rtp_ts
    si.packet_count = packets
    si.octet_count = octets
    cdef cp_rtcp_report_block *b = _blocks(blocks)
    cdef bytearray buf = bytearray(28 + 24 * len(blocks) + ext.shape[0])
    try:
        rc = cp_rtcp_write_sr(<uint8_t *><char *>buf, len(buf), ssrc, &si, b, len(blocks),
                              &ext[0] if ext.shape[0] else NULL, ext.shape[0], &w)
    finally:
        free(b)
    return _finish(buf, rc, w)


def write_rr(uint32_t ssrc, list blocks, const uint8_t[::1] ext):
    """One RR packet (``blocks`` as in :func:`parse`; ``ext`` a multiple of 4 bytes)."""
    cdef size_t w = 0
    cdef cp_rtcp_report_block *b = _blocks(blocks)
    cdef bytearray buf = bytearray(8 + 24 * len(blocks) + ext.shape[0])
    try:
        rc = cp_rtcp_write_rr(<uint8_t *><char *>buf, len(buf), ssrc, b, len(blocks),
                              &ext[0] if ext.shape[0] else NULL, ext.shape[0], &w)
    finally:
        free(b)
    return _finish(buf, rc, w)


def write_sdes(list items):
    """One SDES packet from ``[(chunk, ssrc, type, text), ...]`` (consecutive equal chunk
    indexes form one chunk; type 0 with empty text = a chunk without items)."""
    cdef size_t n = len(items), w = 0, i
    cdef cp_rtcp_sdes_item *it = <cp_rtcp_sdes_item *>malloc((n + 1) * sizeof(cp_rtcp_sdes_item))
    if it == NULL:
        raise MemoryError()
    try:
        texts = []
        pos = 0
        for i in range(n):
            chunk, ssrc, typ, text = items[i]
            text = bytes(text)
            if len(text) > 255:
                raise ValueError(f"SDES item text is at most 255 bytes, got {len(text)}")
            if not 0 <= typ <= 255:
                raise ValueError(f"SDES item type must be 0..255, got {typ}")
            it[i].ssrc = ssrc
            it[i].chunk = chunk
            it[i].type = typ
            it[i].length = len(text)
            it[i].offset = pos
            texts.append(text)
            pos += len(text)
        blob = b"".join(texts)
        # per entry at most: SSRC 4 + type/length 2 + END and nulls 4 (plus its text)
        buf = bytearray(4 + 10 * n + pos)
        rc = cp_rtcp_write_sdes(<uint8_t *><char *>buf, len(buf), it, n,
                                <const uint8_t *>PyBytes_AS_STRING(blob), len(blob), &w)
    finally:
        free(it)
    return _finish(buf, rc, w)


def write_bye(list ssrcs, reason):
    """One BYE packet for ``ssrcs`` with an optional ``reason`` (bytes, at most 255)."""
    cdef size_t n = len(ssrcs), w = 0, i
    cdef uint32_t arr[32]
    if n > CP_RTCP_MAX_COUNT:
        raise ValueError(f"at most {CP_RTCP_MAX_COUNT} SSRCs per BYE, got {n}")
    for i in range(n):
        arr[i] = ssrcs[i]
    r = b"" if reason is None else bytes(reason)
    buf = bytearray(4 + 4 * n + len(r) + 4)
    rc = cp_rtcp_write_bye(<uint8_t *><char *>buf, len(buf), arr, n, reason is not None,
                           <const uint8_t *>PyBytes_AS_STRING(r), len(r), &w)
    return _finish(buf, rc, w)


def write_app(uint8_t subtype, uint32_t ssrc, bytes name, bytes data):
    """One APP packet (``name`` 4 bytes, ``data`` a multiple of 4 bytes)."""
    cdef size_t w = 0
    if len(name) != 4:
        raise ValueError(f"APP name must be 4 bytes, got {len(name)}")
    buf = bytearray(12 + len(data))
    rc = cp_rtcp_write_app(<uint8_t *><char *>buf, len(buf), subtype, ssrc,
                           <const uint8_t *>PyBytes_AS_STRING(name),
                           <const uint8_t *>PyBytes_AS_STRING(data), len(data), &w)
    return _finish(buf, rc, w)


def write_nack(uint32_t sender, uint32_t media, list items):
    """One generic NACK packet from ``[(pid, blp), ...]`` (at least one item)."""
    cdef size_t n = len(items), w = 0, i
    cdef uint16_t *pids = <uint16_t *>malloc((2 * n + 2) * sizeof(uint16_t))
    if pids == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            pids[i], pids[n + 1 + i] = items[i]
        buf = bytearray(12 + 4 * n)
        rc = cp_rtcp_write_nack(<uint8_t *><char *>buf, len(buf), sender, media, pids,
                                pids + n + 1, n, &w)
    finally:
        free(pids)
    return _finish(buf, rc, w)


def write_pli(uint32_t sender, uint32_t media):
    """One PLI packet (12 bytes)."""
    cdef size_t w = 0
    buf = bytearray(12)
    rc = cp_rtcp_write_pli(<uint8_t *><char *>buf, 12, sender, media, &w)
    return _finish(buf, rc, w)


def write_fir(uint32_t sender, uint32_t media, list entries):
    """One FIR packet from ``[(ssrc, seq_nr), ...]`` (at least one entry)."""
    cdef size_t n = len(entries), w = 0, i
    cdef cp_rtcp_fir_entry *e = <cp_rtcp_fir_entry *>malloc((n + 1) * sizeof(cp_rtcp_fir_entry))
    if e == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            e[i].ssrc, e[i].seq_nr = entries[i]
        buf = bytearray(12 + 8 * n)
        rc = cp_rtcp_write_fir(<uint8_t *><char *>buf, len(buf), sender, media, e, n, &w)
    finally:
        free(e)
    return _finish(buf, rc, w)


def write_remb(uint32_t sender, uint32_t media, uint8_t exponent, uint32_t mantissa,
               list ssrcs):
    """One REMB packet: ``mantissa * 2**exponent`` bits per second for ``ssrcs``."""
    cdef size_t n = len(ssrcs), w = 0, i
    cdef uint32_t arr[256]
    if n > CP_RTCP_MAX_REMB_SSRCS:
        raise ValueError(f"at most {CP_RTCP_MAX_REMB_SSRCS} SSRCs per REMB, got {n}")
    for i in range(n):
        arr[i] = ssrcs[i]
    buf = bytearray(20 + 4 * n)
    rc = cp_rtcp_write_remb(<uint8_t *><char *>buf, len(buf), sender, media, exponent, mantissa,
                            arr, n, &w)
    return _finish(buf, rc, w)


def write_raw(uint8_t type, uint8_t count, bytes body):
    """Any packet from its type, 5-bit count and body (a multiple of 4 bytes)."""
    cdef size_t w = 0
    buf = bytearray(4 + len(body))
    rc = cp_rtcp_write_raw(<uint8_t *><char *>buf, len(buf), type, count,
                           <const uint8_t *>PyBytes_AS_STRING(body), len(body), &w)
    return _finish(buf, rc, w)


def nack_pack(seqs):
    """``[(pid, blp), ...]`` for the lost sequence numbers ``seqs`` (each 0..65535), greedy in
    the given order (RFC 4585 section 6.2.1).  Runs without the GIL."""
    cdef size_t n = len(seqs), k = 0, i
    cdef uint16_t *buf = <uint16_t *>malloc((3 * n + 3) * sizeof(uint16_t))
    cdef int rc
    if buf == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            s = seqs[i]
            if not 0 <= s <= 0xFFFF:
                raise ValueError(f"sequence number must be 0..65535, got {s}")
            buf[i] = s
        with nogil:
            rc = cp_rtcp_nack_pack(buf, n, buf + n + 1, buf + 2 * n + 2, n + 1, &k)
        _check(rc)
        return [(buf[n + 1 + i], buf[2 * n + 2 + i]) for i in range(k)]
    finally:
        free(buf)


def nack_unpack(items):
    """The sequence numbers that ``[(pid, blp), ...]`` reports lost, in item order.  Runs
    without the GIL."""
    cdef size_t n = len(items), m = 0, i
    cdef uint16_t *buf = <uint16_t *>malloc((19 * n + 3) * sizeof(uint16_t))
    cdef int rc
    if buf == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            buf[i], buf[n + 1 + i] = items[i]
        with nogil:
            rc = cp_rtcp_nack_unpack(buf, buf + n + 1, n, buf + 2 * n + 2, 17 * n + 1, &m)
        _check(rc)
        return [buf[2 * n + 2 + i] for i in range(m)]
    finally:
        free(buf)


def build(cls, tuple names, tuple values):
    """An instance of the slots class ``cls`` with ``names[i] = values[i]``, set through the
    slot descriptors (bypassing a frozen dataclass's ``__setattr__`` and ``__post_init__``):
    for result objects of values this module already validated."""
    if len(names) != len(values):
        raise ValueError(f"{cls.__name__} takes {len(names)} values, got {len(values)}")
    obj = object.__new__(cls)
    cdef Py_ssize_t i
    for i in range(len(names)):
        PyObject_GenericSetAttr(obj, names[i], values[i])
    return obj
