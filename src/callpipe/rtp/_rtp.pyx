# cython: language_level=3
"""Bindings of native/src/cp_rtp.c: RTP packets (RFC 3550), header extensions (RFC 8285),
wrap-safe sequence arithmetic, and the VP8 payload format (RFC 7741).

Low level; the public API is :mod:`callpipe.rtp` (``packet``, ``seqnum``, ``vp8``, ``opus``),
which re-exports the classes defined here.  Inputs are any bytes-like objects (read through
the buffer protocol for the duration of the call); outputs are ``bytes``.

Per-packet calls (``RtpPacket.parse``, ``Vp8FrameAssembler.push``, ...) keep the GIL: they cost
well under a microsecond and releasing the GIL would cost more.  Batch calls
(``parse_many``, ``Vp8Packetizer.packetize``, ``Vp8FrameAssembler.push_many``) release it
around the C loop.

One error gate, :func:`_check`: C status codes become :class:`callpipe.errors.TransportError`
with a message naming the defect (argument errors raise ``ValueError`` / ``TypeError`` before
any C call).
"""

from collections import namedtuple

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from ..errors import ClosedError, TransportError


cdef extern from "callpipe/cp_rtp.h" nogil:
    enum:
        CP_RTP_OK
        CP_RTP_ERR_TRUNCATED
        CP_RTP_ERR_VERSION
        CP_RTP_ERR_CSRC
        CP_RTP_ERR_EXT_HEADER
        CP_RTP_ERR_EXT_LENGTH
        CP_RTP_ERR_EXT_ELEMENT
        CP_RTP_ERR_EXT_ID
        CP_RTP_ERR_PADDING_ZERO
        CP_RTP_ERR_PADDING_LENGTH
        CP_RTP_ERR_ARG
        CP_RTP_ERR_BUFFER
        CP_RTP_ERR_EXT_VALUE
        CP_RTP_ERR_VP8_EMPTY
        CP_RTP_ERR_VP8_TRUNCATED
        CP_RTP_ERR_VP8_NO_DATA
        CP_RTP_ERR_MTU
        CP_RTP_ERR_SSRC
        CP_RTP_ERR_NOMEM
        CP_RTP_ERR_EXT_FORM
        CP_RTP_FIXED_HEADER
        CP_RTP_MAX_CSRC
        CP_RTP_ONE_BYTE_PROFILE
        CP_RTP_TWO_BYTE_PROFILE
        CP_RTP_EXT_FORM_OTHER
        CP_RTP_EXT_FORM_ONE_BYTE
        CP_RTP_EXT_FORM_TWO_BYTE
        CP_VP8_MAX_DESCRIPTOR
        CP_VP8_LOSS_GAP
        CP_VP8_LOSS_KEYFRAME
        CP_VP8_LOSS_WINDOW
        CP_VP8_LOSS_PARTIAL
        CP_VP8_LOSS_SKIP
        CP_VP8_LOSS_RESET
        CP_VP8_PUSH_INSERTED
        CP_VP8_PUSH_DUPLICATE
        CP_VP8_PUSH_LATE

    ctypedef struct cp_rtp_header:
        uint8_t marker
        uint8_t payload_type
        uint16_t sequence_number
        uint32_t timestamp
        uint32_t ssrc
        uint8_t csrc_count
        uint32_t csrcs[15]
        uint8_t has_extension
        uint16_t extension_profile
        size_t extension_offset
        size_t extension_len
        size_t payload_offset
        size_t payload_len
        size_t padding_len

    ctypedef struct cp_rtp_ext_element:
        uint8_t id
        const uint8_t *data
        size_t len

    ctypedef struct cp_rtp_frame_marking:
        uint8_t start
        uint8_t end
        uint8_t independent
        uint8_t discardable
        uint8_t base_layer_sync
        uint8_t tid
        uint8_t size
        uint8_t layer_id
        uint8_t tl0_pic_idx

    ctypedef struct cp_rtp_unwrapper:
        int64_t last
        uint8_t bits
        uint8_t started

    ctypedef struct cp_vp8_descriptor:
        uint8_t extended
        uint8_t non_reference
        uint8_t start
        uint8_t partition_id
        uint8_t picture_id_bits
        uint16_t picture_id
        uint8_t has_tl0_pic_idx
        uint8_t tl0_pic_idx
        uint8_t has_tid
        uint8_t tid
        uint8_t layer_sync
        uint8_t has_key_idx
        uint8_t key_idx
        size_t size

    ctypedef struct cp_vp8_packetizer_params:
        const uint8_t *header
        size_t header_len
        size_t transport_cc_offset
        uint16_t transport_cc_seq
        size_t frame_marking_offset
        cp_vp8_descriptor descriptor
        size_t mtu

    ctypedef struct cp_vp8_assembler_config:
        size_t capacity
        uint8_t has_ssrc
        uint32_t ssrc
        uint8_t frame_marking_id
        uint8_t encrypted
        uint32_t max_wait_frames
        double max_wait_ms

    ctypedef struct cp_vp8_frame_info:
        uint32_t ssrc
        uint8_t payload_type
        uint32_t timestamp
        int64_t extended_timestamp
        int64_t first_seq
        int64_t last_seq
        uint32_t packets
        size_t size
        int8_t keyframe
        uint8_t continuous
        uint8_t marker
        uint8_t has_frame_marking
        cp_rtp_frame_marking frame_marking
        cp_vp8_descriptor descriptor
        double arrival_ms

    ctypedef struct cp_vp8_loss:
        int reason
        int64_t first_seq
        int64_t last_seq
        uint32_t packets_received
        uint32_t timestamps
        uint32_t first_timestamp
        uint32_t last_timestamp

    ctypedef struct cp_vp8_assembler_stats:
        uint64_t packets
        uint64_t bytes
        uint64_t duplicates
        uint64_t late
        uint64_t invalid
        uint64_t foreign
        uint64_t frames
        uint64_t keyframes
        uint64_t losses
        uint64_t packets_dropped
        uint64_t padding

    ctypedef struct cp_vp8_assembler:
        pass

    int cp_rtp_parse(const uint8_t *data, size_t len, cp_rtp_header *h)
    size_t cp_rtp_header_len(const cp_rtp_header *h)
    int cp_rtp_write_header(const cp_rtp_header *h, const uint8_t *ext_block, uint8_t *out,
                            size_t cap, size_t *written)
    int cp_rtp_write(const cp_rtp_header *h, const uint8_t *ext_block, const uint8_t *payload,
                     const uint8_t *padding, uint8_t *out, size_t cap, size_t *written)
    int cp_rtp_ext_form(uint16_t profile)
    int cp_rtp_ext_next(uint16_t profile, const uint8_t *block, size_t len, size_t *pos,
                        uint8_t *id, size_t *data_offset, size_t *data_len)
    int cp_rtp_ext_validate(uint16_t profile, const uint8_t *block, size_t len)
    int cp_rtp_ext_find(uint16_t profile, const uint8_t *block, size_t len, uint8_t id,
                        size_t *data_offset, size_t *data_len)
    int cp_rtp_ext_choose_form(const cp_rtp_ext_element *elems, size_t n)
    size_t cp_rtp_ext_block_len(int form, const cp_rtp_ext_element *elems, size_t n)
    int cp_rtp_ext_build(int form, const cp_rtp_ext_element *elems, size_t n, uint8_t *out,
                         size_t cap, size_t *written, uint16_t *profile)
    uint32_t cp_rtp_abs_send_time_from_us(uint64_t time_us)
    uint64_t cp_rtp_abs_send_time_to_us(uint32_t value)
    void cp_rtp_abs_send_time_encode(uint32_t value, uint8_t *out)
    int cp_rtp_abs_send_time_decode(const uint8_t *data, size_t len, uint32_t *value)
    void cp_rtp_transport_cc_encode(uint16_t seq, uint8_t *out)
    int cp_rtp_transport_cc_decode(const uint8_t *data, size_t len, uint16_t *seq)
    uint8_t cp_rtp_audio_level_encode(int voice, int level)
    int cp_rtp_audio_level_decode(const uint8_t *data, size_t len, int *voice, int *level)
    int cp_rtp_frame_marking_decode(const uint8_t *data, size_t len, cp_rtp_frame_marking *fm)
    size_t cp_rtp_frame_marking_encode(const cp_rtp_frame_marking *fm, uint8_t *out)
    int32_t cp_rtp_seq_diff(uint16_t a, uint16_t b)
    int64_t cp_rtp_ts_diff(uint32_t a, uint32_t b)
    void cp_rtp_unwrapper_init(cp_rtp_unwrapper *u, unsigned bits)
    int64_t cp_rtp_unwrap_peek(const cp_rtp_unwrapper *u, uint32_t value)
    int64_t cp_rtp_unwrap(cp_rtp_unwrapper *u, uint32_t value)
    int cp_vp8_descriptor_parse(const uint8_t *data, size_t len, cp_vp8_descriptor *d)
    size_t cp_vp8_descriptor_len(const cp_vp8_descriptor *d)
    int cp_vp8_descriptor_write(const cp_vp8_descriptor *d, uint8_t *out)
    int cp_vp8_is_keyframe(const uint8_t *data, size_t len)
    int cp_vp8_packet_count(const cp_vp8_packetizer_params *p, size_t frame_len, size_t *count)
    size_t cp_vp8_packet_size(const cp_vp8_packetizer_params *p, size_t frame_len, size_t count,
                              size_t index)
    int cp_vp8_packetize(const cp_vp8_packetizer_params *p, const uint8_t *frame,
                         size_t frame_len, uint8_t *const *out, size_t count)
    cp_vp8_assembler *cp_vp8_assembler_new(const cp_vp8_assembler_config *cfg, int *status)
    void cp_vp8_assembler_free(cp_vp8_assembler *a)
    void cp_vp8_assembler_reset(cp_vp8_assembler *a, int unlock_ssrc)
    int cp_vp8_assembler_push(cp_vp8_assembler *a, const uint8_t *data, size_t len,
                              double arrival_ms, int *outcome)
    void cp_vp8_assembler_push_batch(cp_vp8_assembler *a, const uint8_t *const *data,
                                     const size_t *lens, size_t n, double arrival_ms,
                                     size_t *consumed)
    void cp_vp8_assembler_advance(cp_vp8_assembler *a, double now_ms)
    void cp_vp8_assembler_skip(cp_vp8_assembler *a, int all)
    int cp_vp8_assembler_ready(cp_vp8_assembler *a, cp_vp8_frame_info *info)
    int cp_vp8_assembler_take(cp_vp8_assembler *a, uint8_t *out, size_t cap)
    int cp_vp8_assembler_pop_loss(cp_vp8_assembler *a, cp_vp8_loss *loss)
    void cp_vp8_assembler_get_stats(const cp_vp8_assembler *a, cp_vp8_assembler_stats *s)
    size_t cp_vp8_assembler_held(const cp_vp8_assembler *a)


# -- constants -----------------------------------------------------------------------------
ONE_BYTE_PROFILE = CP_RTP_ONE_BYTE_PROFILE
TWO_BYTE_PROFILE = CP_RTP_TWO_BYTE_PROFILE
FIXED_HEADER_SIZE = CP_RTP_FIXED_HEADER
MAX_CSRC = CP_RTP_MAX_CSRC
MAX_VP8_DESCRIPTOR_SIZE = CP_VP8_MAX_DESCRIPTOR

#: status code -> short name (diagnostics and the differential tests)
ERROR_NAMES = {
    CP_RTP_OK: "OK",
    CP_RTP_ERR_TRUNCATED: "TRUNCATED",
    CP_RTP_ERR_VERSION: "VERSION",
    CP_RTP_ERR_CSRC: "CSRC",
    CP_RTP_ERR_EXT_HEADER: "EXT_HEADER",
    CP_RTP_ERR_EXT_LENGTH: "EXT_LENGTH",
    CP_RTP_ERR_EXT_ELEMENT: "EXT_ELEMENT",
    CP_RTP_ERR_EXT_ID: "EXT_ID",
    CP_RTP_ERR_PADDING_ZERO: "PADDING_ZERO",
    CP_RTP_ERR_PADDING_LENGTH: "PADDING_LENGTH",
    CP_RTP_ERR_ARG: "ARG",
    CP_RTP_ERR_BUFFER: "BUFFER",
    CP_RTP_ERR_EXT_VALUE: "EXT_VALUE",
    CP_RTP_ERR_VP8_EMPTY: "VP8_EMPTY",
    CP_RTP_ERR_VP8_TRUNCATED: "VP8_TRUNCATED",
    CP_RTP_ERR_VP8_NO_DATA: "VP8_NO_DATA",
    CP_RTP_ERR_MTU: "MTU",
    CP_RTP_ERR_SSRC: "SSRC",
    CP_RTP_ERR_NOMEM: "NOMEM",
    CP_RTP_ERR_EXT_FORM: "EXT_FORM",
}

cdef dict _MESSAGES = {
    CP_RTP_ERR_TRUNCATED: "RTP packet shorter than the 12-byte fixed header",
    CP_RTP_ERR_VERSION: "not an RTP packet: the version field is not 2",
    CP_RTP_ERR_CSRC: "RTP packet truncated inside its CSRC list",
    CP_RTP_ERR_EXT_HEADER: "RTP packet has the X bit set but no room for the 4-byte "
                           "extension header",
    CP_RTP_ERR_EXT_LENGTH: "RTP header extension length runs past the end of the packet",
    CP_RTP_ERR_EXT_ELEMENT: "RTP header extension element runs past the end of its "
                            "extension block (RFC 8285)",
    CP_RTP_ERR_EXT_ID: "one-byte RTP header extension element with id 0 and a non-zero "
                       "length (RFC 8285 4.2)",
    CP_RTP_ERR_PADDING_ZERO: "RTP padding bit set but the padding count octet is 0",
    CP_RTP_ERR_PADDING_LENGTH: "RTP padding count is longer than the packet after its header",
    CP_RTP_ERR_ARG: "invalid RTP field value (internal error)",
    CP_RTP_ERR_BUFFER: "RTP output buffer too small (internal error)",
    CP_RTP_ERR_EXT_VALUE: "RTP header extension element has the wrong size for its type",
    CP_RTP_ERR_VP8_EMPTY: "empty VP8 RTP payload",
    CP_RTP_ERR_VP8_TRUNCATED: "VP8 payload descriptor runs past the end of the payload "
                              "(RFC 7741 4.2)",
    CP_RTP_ERR_VP8_NO_DATA: "VP8 payload descriptor is not followed by any VP8 data",
    CP_RTP_ERR_MTU: "MTU too small for the RTP header, the VP8 descriptor and 1 byte of data",
    CP_RTP_ERR_SSRC: "RTP packet of another SSRC than the assembler's",
    CP_RTP_ERR_EXT_FORM: "RTP header extension element does not fit the requested form "
                         "(one-byte: id 1..14, 1..16 bytes; two-byte: id 1..255, 0..255 bytes)",
}


cdef int _check(int rc) except -1:
    """The error gate: raise the typed error for a C status, else return 0."""
    if rc == CP_RTP_OK:
        return 0
    if rc == CP_RTP_ERR_NOMEM:
        raise MemoryError("out of memory in the RTP core")
    raise TransportError(_MESSAGES.get(rc, f"RTP error {rc}"))


cdef inline int _get(object obj, Py_buffer *view, str name) except -1:
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except TypeError:
        raise TypeError(f"{name} must be bytes-like, got {type(obj).__name__}") from None
    return 0


cdef inline uint64_t _uint(object v, str name, uint64_t hi) except? 0xFFFFFFFFFFFFFFFF:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < 0 or v > hi:
        raise ValueError(f"{name} must be in 0..{hi}, got {v}")
    return <uint64_t>v


cdef inline bytes _slice(const uint8_t *p, size_t n):
    return PyBytes_FromStringAndSize(<const char *>p, <Py_ssize_t>n)


# -- small named value types ----------------------------------------------------------------
HeaderExtension = namedtuple("HeaderExtension", ["id", "data"])
HeaderExtension.__doc__ = """One RFC 8285 header extension element.

:param id: local identifier (1..14 in the one-byte form, 1..255 in the two-byte form).
:param data: the element's value (1..16 bytes one-byte form, 0..255 bytes two-byte form).
"""

AudioLevel = namedtuple("AudioLevel", ["voice", "level"])
AudioLevel.__doc__ = """RFC 6464 client-to-mixer audio level.

:param voice: the V bit: the sender's voice activity detector saw speech.
:param level: 0..127, the level in -dBov (0 = loudest, 127 = silence, muted).
"""

FrameMarking = namedtuple(
    "FrameMarking",
    ["start", "end", "independent", "discardable", "base_layer_sync", "temporal_id",
     "layer_id", "tl0_pic_idx"],
    defaults=(None, None),
)
FrameMarking.__doc__ = """RFC 9626 video frame marking (readable without decrypting the payload).

:param start: S, first packet of the frame.
:param end: E, last packet of the frame.
:param independent: I, decodable on its own (a keyframe).
:param discardable: D, no other frame depends on it.
:param base_layer_sync: B, depends only on the base temporal layer.
:param temporal_id: TID, 0..7.
:param layer_id: LID, 0..255, or None (the 1-byte, non-scalable form).
:param tl0_pic_idx: TL0PICIDX, 0..255, or None.
"""

Vp8Payload = namedtuple("Vp8Payload", ["descriptor", "data"])
Vp8Payload.__doc__ = """One depacketized RTP payload: its RFC 7741 descriptor and the VP8 bytes after it."""

FrameLoss = namedtuple(
    "FrameLoss",
    ["reason", "first_seq", "last_seq", "packets_received", "timestamps", "first_timestamp"],
)
FrameLoss.__doc__ = """Packets the frame assembler gave up on (frames that will never be emitted).

:param reason: ``"gap"`` (waited max_wait_frames / max_wait_ms for missing packets),
    ``"keyframe"`` (a complete keyframe made them useless), ``"window"`` (pushed out by a packet
    too far ahead), ``"partial"`` (a frame whose first packet was never seen), ``"skip"``
    (``skip()`` / ``flush()``), ``"reset"``.
:param first_seq: first extended sequence number given up.
:param last_seq: last extended sequence number given up (inclusive).
:param packets_received: how many of those packets had arrived.
:param timestamps: distinct RTP timestamps among them (frames touched; 0 when none arrived).
:param first_timestamp: RTP timestamp (90 kHz) of the first that arrived, or None.
"""

AssemblerStats = namedtuple(
    "AssemblerStats",
    ["packets", "bytes", "duplicates", "late", "invalid", "foreign", "frames", "keyframes",
     "losses", "packets_dropped", "padding", "held"],
)
AssemblerStats.__doc__ = """Counters of a :class:`Vp8FrameAssembler` since it was created.

:param packets: packets accepted into the window.
:param bytes: VP8 bytes accepted (descriptors removed), bytes.
:param duplicates: packets already held.
:param late: packets behind the window (their frame was emitted or given up).
:param invalid: not RTP, bad VP8 descriptor or bad frame marking.
:param foreign: packets of another SSRC.
:param frames: frames emitted.
:param keyframes: keyframes emitted.
:param losses: loss records (see :class:`FrameLoss`; a loss continuing the previous one
    for the same reason widens it instead).
:param packets_dropped: received packets given up in losses.
:param padding: padding-only packets (no payload).
:param held: packets held right now.
"""

cdef dict _LOSS_REASONS = {
    CP_VP8_LOSS_GAP: "gap",
    CP_VP8_LOSS_KEYFRAME: "keyframe",
    CP_VP8_LOSS_WINDOW: "window",
    CP_VP8_LOSS_PARTIAL: "partial",
    CP_VP8_LOSS_SKIP: "skip",
    CP_VP8_LOSS_RESET: "reset",
}


# -- validation helpers (no object) ---------------------------------------------------------
def check(data):
    """The status :func:`RtpPacket.parse` would meet on ``data``: 0 if it parses, else a key
    of :data:`ERROR_NAMES`."""
    cdef Py_buffer v
    cdef cp_rtp_header h
    cdef int rc
    _get(data, &v, "data")
    rc = cp_rtp_parse(<const uint8_t *>v.buf, <size_t>v.len, &h)
    PyBuffer_Release(&v)
    return rc


def check_vp8(payload):
    """The status :func:`Vp8Descriptor.parse` would meet on ``payload`` (0 if it parses)."""
    cdef Py_buffer v
    cdef cp_vp8_descriptor d
    cdef int rc
    _get(payload, &v, "payload")
    rc = cp_vp8_descriptor_parse(<const uint8_t *>v.buf, <size_t>v.len, &d)
    PyBuffer_Release(&v)
    return rc


# -- header extensions ----------------------------------------------------------------------
cdef tuple _decode_block(uint16_t profile, const uint8_t *block, size_t n):
    cdef size_t pos = 0, off = 0, l = 0
    cdef uint8_t eid = 0
    cdef int rc
    out = []
    while True:
        rc = cp_rtp_ext_next(profile, block, n, &pos, &eid, &off, &l)
        if rc != 1:
            break
        out.append(HeaderExtension(eid, _slice(block + off, l)))
    _check(-rc)
    return tuple(out)


def decode_extensions(int profile, block):
    """The elements of an extension block (bytes after the 4-byte extension header).

    :param profile: the 16-bit "defined by profile" field (0xBEDE one-byte form, 0x1000..0x100F
        two-byte form; any other profile is opaque and yields no elements).
    :param block: the block bytes.
    """
    cdef Py_buffer v
    if profile < 0 or profile > 0xffff:
        raise ValueError(f"profile must be in 0..65535, got {profile}")
    _get(block, &v, "block")
    try:
        return _decode_block(<uint16_t>profile, <const uint8_t *>v.buf, <size_t>v.len)
    finally:
        PyBuffer_Release(&v)


cdef int _form_code(object form) except -1:
    if form == "auto":
        return 0
    if form == "one-byte":
        return CP_RTP_EXT_FORM_ONE_BYTE
    if form == "two-byte":
        return CP_RTP_EXT_FORM_TWO_BYTE
    raise ValueError(f"extension_form must be 'auto', 'one-byte' or 'two-byte', got {form!r}")


cdef list _element_list(object extensions):
    """Normalise HeaderExtension / (id, data) pairs / a mapping to a list of (id, bytes)."""
    if extensions is None:
        return []
    items = extensions.items() if hasattr(extensions, "items") else extensions
    out = []
    for item in items:
        try:
            eid, data = item
        except (TypeError, ValueError):
            raise TypeError(
                f"header extensions must be (id, bytes) pairs, got {item!r}") from None
        if not isinstance(eid, int) or isinstance(eid, bool):
            raise TypeError(f"header extension id must be an int, got {type(eid).__name__}")
        if eid < 1 or eid > 255:
            raise ValueError(f"header extension id must be in 1..255, got {eid}")
        data = bytes(data)
        if len(data) > 255:
            raise ValueError(f"header extension {eid} is {len(data)} bytes; at most 255")
        out.append((eid, data))
    return out


cdef tuple _build_block(list elems, int form):
    """(profile, block bytes) for a non-empty element list."""
    cdef size_t n = len(elems), i, written = 0
    cdef cp_rtp_ext_element *arr = <cp_rtp_ext_element *>malloc(n * sizeof(cp_rtp_ext_element))
    cdef uint16_t profile = 0
    cdef bytes out
    cdef bytes d
    if arr == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            d = elems[i][1]
            arr[i].id = <uint8_t>elems[i][0]
            arr[i].data = <const uint8_t *>PyBytes_AS_STRING(d)
            arr[i].len = <size_t>PyBytes_GET_SIZE(d)
        if form == 0:
            form = cp_rtp_ext_choose_form(arr, n)
            if form == 0:
                raise ValueError("header extension has an empty or oversized element")
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>cp_rtp_ext_block_len(form, arr, n))
        rc = cp_rtp_ext_build(form, arr, n, <uint8_t *>PyBytes_AS_STRING(out),
                              <size_t>PyBytes_GET_SIZE(out), &written, &profile)
        if rc == CP_RTP_ERR_EXT_FORM:
            raise ValueError(_MESSAGES[rc])
        if rc == CP_RTP_ERR_ARG:
            raise ValueError("header extension block longer than 262140 bytes")
        _check(rc)
        return (profile, out)
    finally:
        free(arr)


def encode_extensions(extensions, form="auto"):
    """``(profile, block)`` of an RFC 8285 extension block holding ``extensions``.

    :param extensions: ``HeaderExtension`` / ``(id, bytes)`` pairs, or a mapping id -> bytes.
    :param form: ``"one-byte"``, ``"two-byte"`` or ``"auto"`` (one-byte when every element
        fits it: id 1..14 and 1..16 bytes).
    """
    elems = _element_list(extensions)
    if not elems:
        raise ValueError("no header extension elements")
    return _build_block(elems, _form_code(form))


# -- typed extension values -----------------------------------------------------------------
def abs_send_time_from_us(time_us):
    """24-bit abs-send-time value (6.18 fixed-point seconds, modulo 64 s) of a time in µs."""
    return cp_rtp_abs_send_time_from_us(_uint(time_us, "time_us", 0xFFFFFFFFFFFFFFFF))


def abs_send_time_to_us(value):
    """Microseconds (0..64e6) of a 24-bit abs-send-time value; resolution 2**-18 s (~3.8 µs)."""
    return cp_rtp_abs_send_time_to_us(<uint32_t>_uint(value, "value", 0xFFFFFF))


def encode_abs_send_time(time_us):
    """The 3-byte abs-send-time element value for a send time in µs (any epoch)."""
    cdef uint8_t b[3]
    cp_rtp_abs_send_time_encode(
        cp_rtp_abs_send_time_from_us(_uint(time_us, "time_us", 0xFFFFFFFFFFFFFFFF)), b)
    return _slice(b, 3)


def decode_abs_send_time(data):
    """The 24-bit 6.18 value of a 3-byte abs-send-time element; TransportError otherwise."""
    cdef Py_buffer v
    cdef uint32_t value = 0
    cdef int rc
    _get(data, &v, "data")
    rc = cp_rtp_abs_send_time_decode(<const uint8_t *>v.buf, <size_t>v.len, &value)
    PyBuffer_Release(&v)
    if rc != CP_RTP_OK:
        raise TransportError(f"abs-send-time element must be 3 bytes, got {v.len}")
    return value


def encode_transport_cc(seq):
    """The 2-byte transport-wide sequence number element value (0..65535)."""
    cdef uint8_t b[2]
    cp_rtp_transport_cc_encode(<uint16_t>_uint(seq, "seq", 0xFFFF), b)
    return _slice(b, 2)


def decode_transport_cc(data):
    """The transport-wide sequence number of a 2-byte element; TransportError otherwise."""
    cdef Py_buffer v
    cdef uint16_t seq = 0
    cdef int rc
    _get(data, &v, "data")
    rc = cp_rtp_transport_cc_decode(<const uint8_t *>v.buf, <size_t>v.len, &seq)
    PyBuffer_Release(&v)
    if rc != CP_RTP_OK:
        raise TransportError(f"transport-wide sequence number element must be 2 bytes, "
                             f"got {v.len}")
    return seq


def encode_audio_level(voice, level):
    """The 1-byte RFC 6464 element value: ``voice`` (V bit), ``level`` 0..127 (-dBov)."""
    return bytes([cp_rtp_audio_level_encode(1 if voice else 0,
                                            <int>_uint(level, "level", 127))])


def decode_audio_level(data):
    """:class:`AudioLevel` of a 1-byte RFC 6464 element; TransportError otherwise."""
    cdef Py_buffer v
    cdef int voice = 0, level = 0, rc
    _get(data, &v, "data")
    rc = cp_rtp_audio_level_decode(<const uint8_t *>v.buf, <size_t>v.len, &voice, &level)
    PyBuffer_Release(&v)
    if rc != CP_RTP_OK:
        raise TransportError(f"audio level element must be 1 byte, got {v.len}")
    return AudioLevel(bool(voice), level)


cdef object _fm_object(const cp_rtp_frame_marking *fm):
    return FrameMarking(bool(fm.start), bool(fm.end), bool(fm.independent),
                        bool(fm.discardable), bool(fm.base_layer_sync), fm.tid,
                        fm.layer_id if fm.size >= 2 else None,
                        fm.tl0_pic_idx if fm.size == 3 else None)


cdef int _fm_struct(object marking, cp_rtp_frame_marking *fm) except -1:
    start, end, independent, discardable, sync, tid, lid, tl0 = marking
    fm.start = 1 if start else 0
    fm.end = 1 if end else 0
    fm.independent = 1 if independent else 0
    fm.discardable = 1 if discardable else 0
    fm.base_layer_sync = 1 if sync else 0
    fm.tid = <uint8_t>_uint(tid, "temporal_id", 7)
    fm.size = 1
    fm.layer_id = 0
    fm.tl0_pic_idx = 0
    if lid is not None:
        fm.layer_id = <uint8_t>_uint(lid, "layer_id", 255)
        fm.size = 2
        if tl0 is not None:
            fm.tl0_pic_idx = <uint8_t>_uint(tl0, "tl0_pic_idx", 255)
            fm.size = 3
    elif tl0 is not None:
        raise ValueError("frame marking tl0_pic_idx needs a layer_id")
    return 0


def encode_frame_marking(marking):
    """The 1-, 2- or 3-byte RFC 9626 element value of a :class:`FrameMarking`."""
    cdef cp_rtp_frame_marking fm
    cdef uint8_t b[3]
    _fm_struct(marking, &fm)
    return _slice(b, cp_rtp_frame_marking_encode(&fm, b))


def decode_frame_marking(data):
    """:class:`FrameMarking` of a 1..3-byte RFC 9626 element; TransportError otherwise."""
    cdef Py_buffer v
    cdef cp_rtp_frame_marking fm
    cdef int rc
    _get(data, &v, "data")
    rc = cp_rtp_frame_marking_decode(<const uint8_t *>v.buf, <size_t>v.len, &fm)
    PyBuffer_Release(&v)
    if rc != CP_RTP_OK:
        raise TransportError(f"frame marking element must be 1 to 3 bytes, got {v.len}")
    return _fm_object(&fm)


# -- RTP packet -----------------------------------------------------------------------------
cdef class RtpPacket:
    """One RTP packet (RFC 3550), immutable.

    Parsing keeps every bit: ``RtpPacket.parse(b).serialize() == b`` for any ``b`` that parses
    (the extension block and the padding octets are kept as they arrived).  Constructed packets
    build their extension block from ``extensions`` (RFC 8285; one-byte form when every element
    fits it, else two-byte) or take a raw ``extension_profile`` + ``extension_data``.

    :param payload_type: 0..127.
    :param sequence_number: 0..65535.
    :param timestamp: 0..2**32-1, in the payload's clock (90 kHz video, 48 kHz Opus).
    :param ssrc: synchronisation source, 0..2**32-1.
    :param payload: the payload bytes.
    :param marker: the M bit (last packet of a video frame; first of an audio talkspurt).
    :param csrcs: up to 15 contributing sources.
    :param extensions: header extension elements: ``HeaderExtension`` / ``(id, bytes)`` pairs
        or a mapping id -> bytes; empty or None for no extension.
    :param extension_form: ``"auto"``, ``"one-byte"`` or ``"two-byte"``.
    :param extension_profile: raw extension profile (instead of ``extensions``), 0..65535.
    :param extension_data: raw extension block, a multiple of 4 bytes (with the profile).
    :param padding: padding octets after the payload: a count 0..255 (zero filler, then the
        count octet) or the exact octets (the last must equal their number).
    """

    cdef readonly bint marker
    cdef readonly int payload_type
    cdef readonly int sequence_number
    cdef readonly uint32_t timestamp
    cdef readonly uint32_t ssrc
    cdef readonly tuple csrcs
    cdef readonly object extension_profile
    cdef readonly bytes extension_data
    cdef readonly bytes payload
    cdef readonly bytes padding
    cdef object _extensions

    def __init__(self, payload_type, sequence_number, timestamp, ssrc, payload=b"", *,
                 marker=False, csrcs=(), extensions=None, extension_form="auto",
                 extension_profile=None, extension_data=None, padding=0):
        cdef int rc
        self.payload_type = <int>_uint(payload_type, "payload_type", 127)
        self.sequence_number = <int>_uint(sequence_number, "sequence_number", 0xFFFF)
        self.timestamp = <uint32_t>_uint(timestamp, "timestamp", 0xFFFFFFFF)
        self.ssrc = <uint32_t>_uint(ssrc, "ssrc", 0xFFFFFFFF)
        self.marker = bool(marker)
        cs = tuple(csrcs)
        if len(cs) > CP_RTP_MAX_CSRC:
            raise ValueError(f"at most 15 CSRCs, got {len(cs)}")
        for c in cs:
            _uint(c, "csrc", 0xFFFFFFFF)
        self.csrcs = cs
        self.payload = bytes(payload)
        if extension_profile is not None or extension_data is not None:
            if extensions:
                raise ValueError("give either extensions or extension_profile/extension_data")
            if extension_profile is None or extension_data is None:
                raise ValueError("extension_profile and extension_data go together")
            prof = _uint(extension_profile, "extension_profile", 0xFFFF)
            block = bytes(extension_data)
            if len(block) % 4 or len(block) > 0xFFFF * 4:
                raise ValueError(f"extension_data must be a multiple of 4 bytes up to 262140, "
                                 f"got {len(block)}")
            rc = cp_rtp_ext_validate(<uint16_t>prof, <const uint8_t *>PyBytes_AS_STRING(block),
                                     <size_t>len(block))
            if rc != CP_RTP_OK:
                raise ValueError(f"extension_data: {_MESSAGES[rc]}")
            self.extension_profile = prof
            self.extension_data = block
            self._extensions = None
        else:
            elems = _element_list(extensions)
            if elems:
                prof, block = _build_block(elems, _form_code(extension_form))
                self.extension_profile = prof
                self.extension_data = block
                self._extensions = tuple(HeaderExtension(e, d) for e, d in elems)
            else:
                _form_code(extension_form)
                self.extension_profile = None
                self.extension_data = b""
                self._extensions = ()
        if isinstance(padding, int) and not isinstance(padding, bool):
            n = _uint(padding, "padding", 255)
            self.padding = (bytes(n - 1) + bytes([n])) if n else b""
        else:
            pad = bytes(padding)
            if pad and (len(pad) > 255 or pad[len(pad) - 1] != len(pad)):
                raise ValueError("padding octets must be 1..255 long and end with their count")
            self.padding = pad

    @staticmethod
    def parse(data):
        """Parse one RTP packet; :class:`~callpipe.errors.TransportError` names the defect."""
        cdef Py_buffer v
        cdef cp_rtp_header h
        cdef int rc
        _get(data, &v, "data")
        try:
            rc = cp_rtp_parse(<const uint8_t *>v.buf, <size_t>v.len, &h)
            _check(rc)
            return _make_packet(&h, <const uint8_t *>v.buf)
        finally:
            PyBuffer_Release(&v)

    @property
    def extensions(self):
        """The RFC 8285 elements, in order (empty for no extension or another profile)."""
        if self._extensions is None:
            if self.extension_profile is None:
                self._extensions = ()
            else:
                self._extensions = _decode_block(
                    <uint16_t>self.extension_profile,
                    <const uint8_t *>PyBytes_AS_STRING(self.extension_data),
                    <size_t>PyBytes_GET_SIZE(self.extension_data))
        return self._extensions

    @property
    def extension_form(self):
        """``"one-byte"``, ``"two-byte"``, ``"other"`` (opaque profile) or None (no X bit)."""
        if self.extension_profile is None:
            return None
        f = cp_rtp_ext_form(<uint16_t>self.extension_profile)
        return "one-byte" if f == 1 else "two-byte" if f == 2 else "other"

    def extension(self, int id):
        """The value of the first element with local id ``id``, or None."""
        cdef size_t off = 0, l = 0
        cdef int rc
        if self.extension_profile is None:
            return None
        if id < 0 or id > 255:
            raise ValueError(f"extension id must be in 0..255, got {id}")
        rc = cp_rtp_ext_find(<uint16_t>self.extension_profile,
                             <const uint8_t *>PyBytes_AS_STRING(self.extension_data),
                             <size_t>PyBytes_GET_SIZE(self.extension_data), <uint8_t>id,
                             &off, &l)
        if rc == 1:
            return self.extension_data[off:off + l]
        return None

    @property
    def padding_size(self):
        """Padding octets, count octet included (0 when the P bit is clear), bytes."""
        return len(self.padding)

    @property
    def header_size(self):
        """Fixed header + CSRCs + extension, bytes."""
        return (12 + 4 * len(self.csrcs) +
                (0 if self.extension_profile is None else 4 + len(self.extension_data)))

    def __len__(self):
        return self.header_size + len(self.payload) + len(self.padding)

    def serialize(self):
        """The packet's bytes (RFC 3550 section 5.1 layout)."""
        cdef cp_rtp_header h
        cdef size_t written = 0, i
        cdef bytes out
        h.marker = self.marker
        h.payload_type = <uint8_t>self.payload_type
        h.sequence_number = <uint16_t>self.sequence_number
        h.timestamp = self.timestamp
        h.ssrc = self.ssrc
        h.csrc_count = <uint8_t>len(self.csrcs)
        for i in range(h.csrc_count):
            h.csrcs[i] = <uint32_t>self.csrcs[i]
        h.has_extension = self.extension_profile is not None
        h.extension_profile = <uint16_t>(self.extension_profile or 0)
        h.extension_len = <size_t>PyBytes_GET_SIZE(self.extension_data)
        h.payload_len = <size_t>PyBytes_GET_SIZE(self.payload)
        h.padding_len = <size_t>PyBytes_GET_SIZE(self.padding)
        n = cp_rtp_header_len(&h) + h.payload_len + h.padding_len
        out = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>n)
        _check(cp_rtp_write(&h, <const uint8_t *>PyBytes_AS_STRING(self.extension_data),
                            <const uint8_t *>PyBytes_AS_STRING(self.payload),
                            <const uint8_t *>PyBytes_AS_STRING(self.padding) if h.padding_len
                            else NULL,
                            <uint8_t *>PyBytes_AS_STRING(out), n, &written))
        return out

    def __bytes__(self):
        return self.serialize()

    def replace(self, **changes):
        """A copy with some fields changed (constructor keywords).  Changing ``extensions``
        drops the raw block; changing ``extension_data``/``extension_profile`` drops the
        elements."""
        args = dict(payload_type=self.payload_type, sequence_number=self.sequence_number,
                    timestamp=self.timestamp, ssrc=self.ssrc, payload=self.payload,
                    marker=self.marker, csrcs=self.csrcs, padding=self.padding)
        if "extensions" not in changes and self.extension_profile is not None:
            args["extension_profile"] = self.extension_profile
            args["extension_data"] = self.extension_data
        if "extension_profile" in changes or "extension_data" in changes:
            args.setdefault("extension_profile", self.extension_profile)
            args.setdefault("extension_data", self.extension_data)
        args.update(changes)
        return RtpPacket(**args)

    cdef tuple _key(self):
        return (self.marker, self.payload_type, self.sequence_number, self.timestamp, self.ssrc,
                self.csrcs, self.extension_profile, self.extension_data, self.payload,
                self.padding)

    def __eq__(self, other):
        if not isinstance(other, RtpPacket):
            return NotImplemented
        return self._key() == (<RtpPacket>other)._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        ext = f", extensions={list(self.extensions)!r}" if self.extension_profile is not None \
            else ""
        return (f"RtpPacket(pt={self.payload_type}, seq={self.sequence_number}, "
                f"ts={self.timestamp}, ssrc={self.ssrc:#010x}, marker={self.marker}, "
                f"payload={len(self.payload)} B{ext}, padding={len(self.padding)})")


cdef RtpPacket _make_packet(const cp_rtp_header *h, const uint8_t *base):
    cdef RtpPacket p = RtpPacket.__new__(RtpPacket)
    p.marker = h.marker
    p.payload_type = h.payload_type
    p.sequence_number = h.sequence_number
    p.timestamp = h.timestamp
    p.ssrc = h.ssrc
    if h.csrc_count:
        p.csrcs = tuple([h.csrcs[i] for i in range(h.csrc_count)])
    else:
        p.csrcs = ()
    if h.has_extension:
        p.extension_profile = h.extension_profile
        p.extension_data = _slice(base + h.extension_offset, h.extension_len)
        p._extensions = None
    else:
        p.extension_profile = None
        p.extension_data = b""
        p._extensions = ()
    p.payload = _slice(base + h.payload_offset, h.payload_len)
    p.padding = _slice(base + h.payload_offset + h.payload_len, h.padding_len) \
        if h.padding_len else b""
    return p


cdef int _gather(list items, const uint8_t **ptrs, size_t *lens, list keep) except -1:
    """Pointers and lengths of bytes-like items (non-bytes are copied into ``keep``)."""
    cdef Py_ssize_t i
    cdef bytes b
    for i in range(len(items)):
        obj = items[i]
        if type(obj) is bytes:
            b = <bytes>obj
        else:
            try:
                b = bytes(memoryview(obj))
            except TypeError:
                raise TypeError(f"packet {i} must be bytes-like, got {type(obj).__name__}") \
                    from None
            keep.append(b)
        ptrs[i] = <const uint8_t *>PyBytes_AS_STRING(b)
        lens[i] = <size_t>PyBytes_GET_SIZE(b)
    return 0


def parse_many(packets, skip_invalid=False):
    """Parse many RTP packets in one call (the GIL is released while the headers are parsed).

    :param packets: a sequence of bytes-like packets.
    :param skip_invalid: leave out packets that do not parse (else the first raises
        TransportError naming its index).
    :returns: list of :class:`RtpPacket`, in order.
    """
    cdef list items = list(packets)
    cdef list keep = []
    cdef size_t n = len(items), i
    cdef const uint8_t **ptrs = <const uint8_t **>malloc((n or 1) * sizeof(uint8_t *))
    cdef size_t *lens = <size_t *>malloc((n or 1) * sizeof(size_t))
    cdef cp_rtp_header *hs = <cp_rtp_header *>malloc((n or 1) * sizeof(cp_rtp_header))
    cdef int *rcs = <int *>malloc((n or 1) * sizeof(int))
    if ptrs == NULL or lens == NULL or hs == NULL or rcs == NULL:
        free(ptrs); free(lens); free(hs); free(rcs)
        raise MemoryError()
    try:
        _gather(items, ptrs, lens, keep)
        with nogil:
            for i in range(n):
                rcs[i] = cp_rtp_parse(ptrs[i], lens[i], &hs[i])
        out = []
        for i in range(n):
            if rcs[i] != CP_RTP_OK:
                if skip_invalid:
                    continue
                raise TransportError(f"packet {i}: {_MESSAGES.get(rcs[i], rcs[i])}")
            out.append(_make_packet(&hs[i], ptrs[i]))
        return out
    finally:
        free(ptrs); free(lens); free(hs); free(rcs)


# -- sequence numbers -----------------------------------------------------------------------
def seq_diff(a, b):
    """``a - b`` for 16-bit sequence numbers, in -32768..32767 (exactly half: negative)."""
    return cp_rtp_seq_diff(<uint16_t>_uint(a, "a", 0xFFFF), <uint16_t>_uint(b, "b", 0xFFFF))


def ts_diff(a, b):
    """``a - b`` for 32-bit RTP timestamps, in -2**31..2**31-1 (exactly half: negative)."""
    return cp_rtp_ts_diff(<uint32_t>_uint(a, "a", 0xFFFFFFFF), <uint32_t>_uint(b, "b", 0xFFFFFFFF))


cdef class Unwrapper:
    """16- or 32-bit wrapping counter -> 64-bit extended value (see callpipe.rtp.seqnum)."""

    cdef cp_rtp_unwrapper _u
    cdef readonly int bits
    cdef uint64_t _max

    def __init__(self, int bits=16):
        if bits != 16 and bits != 32:
            raise ValueError(f"bits must be 16 or 32, got {bits}")
        self.bits = bits
        self._max = 0xFFFF if bits == 16 else 0xFFFFFFFF
        cp_rtp_unwrapper_init(&self._u, bits)

    def unwrap(self, value):
        """The extended value of ``value`` (nearest to the previous one); remembers it."""
        return cp_rtp_unwrap(&self._u, <uint32_t>_uint(value, "value", self._max))

    def peek(self, value):
        """What :meth:`unwrap` would return, without remembering it."""
        return cp_rtp_unwrap_peek(&self._u, <uint32_t>_uint(value, "value", self._max))

    @property
    def last(self):
        """The last extended value returned by :meth:`unwrap`, or None before the first."""
        return self._u.last if self._u.started else None

    def reset(self):
        """Forget the history: the next value maps to itself again."""
        cp_rtp_unwrapper_init(&self._u, self.bits)


# -- VP8 payload descriptor -----------------------------------------------------------------
cdef class Vp8Descriptor:
    """The VP8 payload descriptor of RFC 7741 section 4.2 (at the start of every RTP payload).

    :param start: S, first packet of a VP8 partition.
    :param partition_id: PID, 0..7 (0 for the first partition).
    :param non_reference: N, the frame is not used as a reference (may be discarded).
    :param picture_id: PictureID, or None (I bit clear).
    :param long_picture_id: M bit: 15-bit PictureID (0..32767) if True, 7-bit (0..127) if not.
    :param tl0_pic_idx: TL0PICIDX 0..255 (running index of base-layer frames), or None.
    :param temporal_id: TID 0..3, or None (T bit clear).
    :param layer_sync: Y, the frame depends only on base-layer frames (needs temporal_id).
    :param key_idx: KEYIDX 0..31, or None (K bit clear).
    :param extended: X bit even when no optional field follows (set automatically otherwise).

    Reserved bits are ignored on parse (RFC 7741 requires receivers to) and written as zero.
    """

    cdef cp_vp8_descriptor _d

    def __init__(self, *, start=False, partition_id=0, non_reference=False, picture_id=None,
                 long_picture_id=True, tl0_pic_idx=None, temporal_id=None, layer_sync=False,
                 key_idx=None, extended=False):
        cdef cp_vp8_descriptor *d = &self._d
        d.start = 1 if start else 0
        d.partition_id = <uint8_t>_uint(partition_id, "partition_id", 7)
        d.non_reference = 1 if non_reference else 0
        d.picture_id_bits = 0
        d.picture_id = 0
        if picture_id is not None:
            d.picture_id_bits = 15 if long_picture_id else 7
            d.picture_id = <uint16_t>_uint(picture_id, "picture_id",
                                           0x7FFF if long_picture_id else 0x7F)
        d.has_tl0_pic_idx = tl0_pic_idx is not None
        d.tl0_pic_idx = <uint8_t>_uint(tl0_pic_idx, "tl0_pic_idx", 255) \
            if tl0_pic_idx is not None else 0
        d.has_tid = temporal_id is not None
        d.tid = <uint8_t>_uint(temporal_id, "temporal_id", 3) if temporal_id is not None else 0
        if layer_sync and temporal_id is None:
            raise ValueError("layer_sync (Y) needs a temporal_id (T bit)")
        d.layer_sync = 1 if layer_sync else 0
        d.has_key_idx = key_idx is not None
        d.key_idx = <uint8_t>_uint(key_idx, "key_idx", 31) if key_idx is not None else 0
        d.extended = 1 if (extended or d.picture_id_bits or d.has_tl0_pic_idx or d.has_tid or
                           d.has_key_idx) else 0
        d.size = cp_vp8_descriptor_len(d)

    @staticmethod
    def parse(payload):
        """The descriptor at the start of an RTP payload; TransportError if malformed (also
        when no VP8 data follows it)."""
        cdef Py_buffer v
        cdef cp_vp8_descriptor d
        cdef int rc
        _get(payload, &v, "payload")
        rc = cp_vp8_descriptor_parse(<const uint8_t *>v.buf, <size_t>v.len, &d)
        PyBuffer_Release(&v)
        _check(rc)
        return _make_descriptor(&d)

    @property
    def start(self): return bool(self._d.start)
    @property
    def partition_id(self): return self._d.partition_id
    @property
    def non_reference(self): return bool(self._d.non_reference)
    @property
    def picture_id(self): return self._d.picture_id if self._d.picture_id_bits else None
    @property
    def long_picture_id(self): return self._d.picture_id_bits == 15
    @property
    def tl0_pic_idx(self): return self._d.tl0_pic_idx if self._d.has_tl0_pic_idx else None
    @property
    def temporal_id(self): return self._d.tid if self._d.has_tid else None
    @property
    def layer_sync(self): return bool(self._d.layer_sync)
    @property
    def key_idx(self): return self._d.key_idx if self._d.has_key_idx else None
    @property
    def extended(self): return bool(self._d.extended)

    @property
    def size(self):
        """Bytes the descriptor takes (1..6)."""
        return cp_vp8_descriptor_len(&self._d)

    def serialize(self):
        """The descriptor's bytes."""
        cdef uint8_t b[6]
        _check(cp_vp8_descriptor_write(&self._d, b))
        return _slice(b, cp_vp8_descriptor_len(&self._d))

    def __bytes__(self):
        return self.serialize()

    def replace(self, **changes):
        """A copy with some fields changed (constructor keywords)."""
        args = dict(start=self.start, partition_id=self.partition_id,
                    non_reference=self.non_reference, picture_id=self.picture_id,
                    long_picture_id=self.long_picture_id, tl0_pic_idx=self.tl0_pic_idx,
                    temporal_id=self.temporal_id, layer_sync=self.layer_sync,
                    key_idx=self.key_idx, extended=self.extended)
        args.update(changes)
        return Vp8Descriptor(**args)

    cdef tuple _key(self):
        return (self.start, self.partition_id, self.non_reference, self.picture_id,
                self.long_picture_id, self.tl0_pic_idx, self.temporal_id, self.layer_sync,
                self.key_idx, self.extended)

    def __eq__(self, other):
        if not isinstance(other, Vp8Descriptor):
            return NotImplemented
        return self._key() == (<Vp8Descriptor>other)._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        parts = [f"start={self.start}", f"partition_id={self.partition_id}"]
        if self.non_reference:
            parts.append("non_reference=True")
        if self.picture_id is not None:
            parts.append(f"picture_id={self.picture_id}"
                         + ("" if self.long_picture_id else ", long_picture_id=False"))
        for name in ("tl0_pic_idx", "temporal_id", "key_idx"):
            if getattr(self, name) is not None:
                parts.append(f"{name}={getattr(self, name)}")
        if self.layer_sync:
            parts.append("layer_sync=True")
        return f"Vp8Descriptor({', '.join(parts)})"


cdef Vp8Descriptor _make_descriptor(const cp_vp8_descriptor *d):
    cdef Vp8Descriptor o = Vp8Descriptor.__new__(Vp8Descriptor)
    o._d = d[0]
    return o


def depacketize(payload):
    """:class:`Vp8Payload` (descriptor, VP8 data) of one RTP payload; TransportError if the
    descriptor is malformed."""
    cdef Py_buffer v
    cdef cp_vp8_descriptor d
    cdef int rc
    _get(payload, &v, "payload")
    try:
        rc = cp_vp8_descriptor_parse(<const uint8_t *>v.buf, <size_t>v.len, &d)
        _check(rc)
        return Vp8Payload(_make_descriptor(&d),
                          _slice(<const uint8_t *>v.buf + d.size, <size_t>v.len - d.size))
    finally:
        PyBuffer_Release(&v)


cdef list _run_packetizer(cp_vp8_packetizer_params *p, object frame):
    """Plan, allocate one bytes object per packet, fill them with the GIL released."""
    cdef Py_buffer v
    cdef size_t count = 0, i, flen
    cdef uint8_t **outs
    cdef list result
    cdef bytes b
    cdef int rc
    _get(frame, &v, "frame")
    try:
        flen = <size_t>v.len
        if flen == 0:
            raise ValueError("frame is empty")
        rc = cp_vp8_packet_count(p, flen, &count)
        if rc == CP_RTP_ERR_MTU:
            raise ValueError(f"mtu {p.mtu} bytes is too small: the RTP header and VP8 "
                             f"descriptor take {p.header_len if p.header != NULL else 0} + "
                             f"{cp_vp8_descriptor_len(&p.descriptor)} bytes")
        _check(rc)
        outs = <uint8_t **>malloc(count * sizeof(uint8_t *))
        if outs == NULL:
            raise MemoryError()
        try:
            result = []
            for i in range(count):
                b = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>cp_vp8_packet_size(p, flen, count, i))
                outs[i] = <uint8_t *>PyBytes_AS_STRING(b)
                result.append(b)
            with nogil:
                rc = cp_vp8_packetize(p, <const uint8_t *>v.buf, flen, outs, count)
            _check(rc)
            return result
        finally:
            free(outs)
    finally:
        PyBuffer_Release(&v)


cdef int _descriptor_arg(object descriptor, cp_vp8_descriptor *d) except -1:
    if descriptor is None:
        d[0] = (<Vp8Descriptor>Vp8Descriptor())._d
    elif isinstance(descriptor, Vp8Descriptor):
        d[0] = (<Vp8Descriptor>descriptor)._d
    else:
        raise TypeError(f"descriptor must be a Vp8Descriptor, got {type(descriptor).__name__}")
    return 0


def packetize(frame, int mtu, descriptor=None):
    """Split one VP8 frame into RTP payloads (descriptor + data), each at most ``mtu`` bytes.

    :param frame: the whole VP8 frame (or its SFrame ciphertext), bytes-like.
    :param mtu: largest payload, bytes (descriptor included).
    :param descriptor: :class:`Vp8Descriptor` of the frame (S is set on the first payload only);
        default: no optional fields.
    :returns: the payloads, balanced in size (they differ by at most one byte).
    """
    cdef cp_vp8_packetizer_params p
    p.header = NULL
    p.header_len = 0
    p.transport_cc_offset = 0
    p.transport_cc_seq = 0
    p.frame_marking_offset = 0
    _descriptor_arg(descriptor, &p.descriptor)
    if mtu <= 0:
        raise ValueError(f"mtu must be positive, got {mtu}")
    p.mtu = <size_t>mtu
    return _run_packetizer(&p, frame)


cdef class Vp8PacketizerBase:
    """State of a VP8 RTP sender (see :class:`callpipe.rtp.vp8.Vp8Packetizer`)."""

    cdef readonly uint32_t ssrc
    cdef readonly int payload_type
    cdef readonly int mtu
    cdef readonly int picture_id_bits
    cdef readonly bint temporal_layers
    cdef readonly tuple csrcs
    cdef uint16_t _seq
    cdef uint16_t _picture_id
    cdef uint8_t _tl0
    cdef bint _tl0_started
    cdef uint16_t _tcc_seq
    cdef int _abs_id, _tcc_id, _fm_id, _form
    cdef readonly object abs_send_time_id
    cdef readonly object transport_cc_id
    cdef readonly object frame_marking_id

    def __init__(self, ssrc, payload_type=96, *, mtu=1200, sequence_number=0, picture_id=0,
                 picture_id_bits=15, temporal_layers=False, tl0_pic_idx=0,
                 abs_send_time_id=None, transport_cc_id=None, transport_cc_seq=0,
                 frame_marking_id=None, extension_form="auto", csrcs=()):
        self.ssrc = <uint32_t>_uint(ssrc, "ssrc", 0xFFFFFFFF)
        self.payload_type = <int>_uint(payload_type, "payload_type", 127)
        self.mtu = <int>_uint(mtu, "mtu", 65535)
        self._seq = <uint16_t>_uint(sequence_number, "sequence_number", 0xFFFF)
        if picture_id_bits not in (0, 7, 15):
            raise ValueError(f"picture_id_bits must be 0, 7 or 15, got {picture_id_bits}")
        self.picture_id_bits = picture_id_bits
        self._picture_id = <uint16_t>_uint(picture_id, "picture_id",
                                           0x7F if picture_id_bits == 7 else 0x7FFF)
        self.temporal_layers = bool(temporal_layers)
        self._tl0 = <uint8_t>_uint(tl0_pic_idx, "tl0_pic_idx", 255)
        self._tl0_started = False
        self._tcc_seq = <uint16_t>_uint(transport_cc_seq, "transport_cc_seq", 0xFFFF)
        self._form = _form_code(extension_form)
        ids = {}
        for name, value in (("abs_send_time_id", abs_send_time_id),
                            ("transport_cc_id", transport_cc_id),
                            ("frame_marking_id", frame_marking_id)):
            if value is not None:
                _uint(value, name, 255)
                if value == 0 or (self._form == CP_RTP_EXT_FORM_ONE_BYTE and value > 14):
                    raise ValueError(f"{name} must be in 1..14 (one-byte form) or 1..255, "
                                     f"got {value}")
                if value in ids:
                    raise ValueError(f"{name} and {ids[value]} share the id {value}")
                ids[value] = name
        self.abs_send_time_id = abs_send_time_id
        self.transport_cc_id = transport_cc_id
        self.frame_marking_id = frame_marking_id
        self._abs_id = abs_send_time_id or 0
        self._tcc_id = transport_cc_id or 0
        self._fm_id = frame_marking_id or 0
        cs = tuple(csrcs)
        if len(cs) > CP_RTP_MAX_CSRC:
            raise ValueError(f"at most 15 CSRCs, got {len(cs)}")
        for c in cs:
            _uint(c, "csrc", 0xFFFFFFFF)
        self.csrcs = cs

    @property
    def sequence_number(self):
        """Sequence number of the next packet."""
        return self._seq

    @property
    def picture_id(self):
        """PictureID of the next frame."""
        return self._picture_id

    @property
    def tl0_pic_idx(self):
        """TL0PICIDX of the last base-layer frame (the next one gets this + 1)."""
        return self._tl0

    @property
    def transport_cc_seq(self):
        """Transport-wide sequence number of the next packet."""
        return self._tcc_seq

    def packetize(self, frame, timestamp, *, keyframe=False, temporal_id=0, layer_sync=None,
                  non_reference=False, key_idx=None, send_time_us=None, extensions=None):
        """Packetize one whole VP8 frame (or its SFrame ciphertext) into RTP packets.

        :param frame: the frame bytes (bytes-like).
        :param timestamp: RTP timestamp, 90 kHz, 0..2**32-1.
        :param keyframe: the frame is a keyframe (I bit of frame marking; TID 0).
        :param temporal_id: temporal layer 0..3 (TID; only sent with ``temporal_layers``).
        :param layer_sync: Y bit; default: ``keyframe``.
        :param non_reference: N bit (``EncodedFrame.droppable``).
        :param key_idx: KEYIDX 0..31, or None.
        :param send_time_us: send time in µs for abs-send-time (when its id is set).
        :param extensions: extra header extension elements on every packet (id -> bytes).
        :returns: the packets, each at most ``mtu`` bytes; marker on the last.
        """
        cdef cp_vp8_packetizer_params p
        cdef cp_rtp_header h
        cdef uint8_t tmp[8]
        cdef uint8_t fm_byte
        cdef size_t written = 0, off = 0, l = 0, i, npk
        cdef bytes header
        cdef int tid = <int>_uint(temporal_id, "temporal_id", 3)
        cdef uint32_t ts = <uint32_t>_uint(timestamp, "timestamp", 0xFFFFFFFF)
        cdef int rc
        cdef uint8_t tl0
        if keyframe and tid != 0:
            raise ValueError("a keyframe is on the base layer (temporal_id 0)")
        if layer_sync is None:
            layer_sync = bool(keyframe)
        elems = []
        if self._abs_id and send_time_us is not None:
            cp_rtp_abs_send_time_encode(cp_rtp_abs_send_time_from_us(
                _uint(send_time_us, "send_time_us", 0xFFFFFFFFFFFFFFFF)), tmp)
            elems.append((self._abs_id, _slice(tmp, 3)))
        if self._tcc_id:
            elems.append((self._tcc_id, b"\x00\x00"))
        if self._fm_id:
            fm_byte = <uint8_t>((0x20 if keyframe else 0) | (0x10 if non_reference else 0) |
                                (0x08 if layer_sync and tid else 0) | tid)
            elems.append((self._fm_id, bytes([fm_byte])))
        if extensions:
            used = {e for e, _ in elems}
            for eid, data in _element_list(extensions):
                if eid in used:
                    raise ValueError(f"extension id {eid} is already used by the packetizer")
                elems.append((eid, data))
        h.marker = 0
        h.payload_type = <uint8_t>self.payload_type
        h.sequence_number = self._seq
        h.timestamp = ts
        h.ssrc = self.ssrc
        h.csrc_count = <uint8_t>len(self.csrcs)
        for i in range(h.csrc_count):
            h.csrcs[i] = <uint32_t>self.csrcs[i]
        h.padding_len = 0
        h.payload_len = 0
        block = b""
        if elems:
            profile, block = _build_block(elems, self._form)
            h.has_extension = 1
            h.extension_profile = <uint16_t>profile
        else:
            h.has_extension = 0
            h.extension_profile = 0
        h.extension_len = <size_t>len(block)
        header = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>cp_rtp_header_len(&h))
        _check(cp_rtp_write_header(&h, <const uint8_t *>PyBytes_AS_STRING(block),
                                   <uint8_t *>PyBytes_AS_STRING(header),
                                   <size_t>PyBytes_GET_SIZE(header), &written))
        p.header = <const uint8_t *>PyBytes_AS_STRING(header)
        p.header_len = written
        ext_base = 12 + 4 * h.csrc_count + 4
        p.transport_cc_offset = 0
        p.frame_marking_offset = 0
        p.transport_cc_seq = self._tcc_seq
        if self._tcc_id and cp_rtp_ext_find(h.extension_profile,
                                            <const uint8_t *>PyBytes_AS_STRING(block),
                                            h.extension_len, <uint8_t>self._tcc_id,
                                            &off, &l) == 1:
            p.transport_cc_offset = ext_base + off
        if self._fm_id and cp_rtp_ext_find(h.extension_profile,
                                           <const uint8_t *>PyBytes_AS_STRING(block),
                                           h.extension_len, <uint8_t>self._fm_id,
                                           &off, &l) == 1:
            p.frame_marking_offset = ext_base + off
        # descriptor: PictureID / TL0PICIDX / TID from the encoder's frame fields
        tl0 = self._tl0
        if self.temporal_layers and tid == 0 and self._tl0_started:
            tl0 = <uint8_t>(tl0 + 1)
        p.descriptor.extended = 0
        p.descriptor.non_reference = 1 if non_reference else 0
        p.descriptor.start = 1
        p.descriptor.partition_id = 0
        p.descriptor.picture_id_bits = <uint8_t>self.picture_id_bits
        p.descriptor.picture_id = self._picture_id
        p.descriptor.has_tl0_pic_idx = self.temporal_layers
        p.descriptor.tl0_pic_idx = tl0
        p.descriptor.has_tid = self.temporal_layers
        p.descriptor.tid = <uint8_t>tid if self.temporal_layers else 0
        p.descriptor.layer_sync = 1 if (layer_sync and self.temporal_layers) else 0
        p.descriptor.has_key_idx = key_idx is not None
        p.descriptor.key_idx = <uint8_t>_uint(key_idx, "key_idx", 31) if key_idx is not None else 0
        p.descriptor.extended = 1 if (p.descriptor.picture_id_bits or self.temporal_layers or
                                      p.descriptor.has_key_idx) else 0
        p.mtu = <size_t>self.mtu
        packets = _run_packetizer(&p, frame)
        # commit the sender state only once the frame went out
        npk = <size_t>len(packets)
        self._seq = <uint16_t>(self._seq + npk)
        self._tcc_seq = <uint16_t>(self._tcc_seq + npk)
        if self.picture_id_bits:
            self._picture_id = <uint16_t>((self._picture_id + 1) &
                                          (0x7F if self.picture_id_bits == 7 else 0x7FFF))
        if self.temporal_layers and tid == 0:
            self._tl0 = tl0
            self._tl0_started = True
        return packets


# -- VP8 frame assembler --------------------------------------------------------------------
cdef class AssembledFrame:
    """One complete VP8 frame put together from its RTP packets.

    :attr data: the VP8 frame (payload descriptors removed), bytes.
    :attr timestamp: RTP timestamp, 90 kHz, 0..2**32-1.
    :attr extended_timestamp: the timestamp unwrapped to 64 bits.
    :attr first_seq: extended sequence number of its first packet.
    :attr last_seq: extended sequence number of its last packet.
    :attr packets: packets it was made of.
    :attr ssrc: the stream's SSRC.
    :attr payload_type: RTP payload type of its first packet.
    :attr keyframe: True/False, or None when unknown (encrypted payload, no frame marking).
    :attr continuous: True when nothing was given up between the previous frame and this one.
    :attr marker: True when ended by the RTP marker (else by the next frame's timestamp).
    :attr descriptor: the :class:`Vp8Descriptor` of its first packet.
    :attr frame_marking: :class:`FrameMarking` of its first packet, or None.
    :attr arrival_ms: latest arrival time among its packets (ms, as pushed), or None.
    """

    cdef readonly bytes data
    cdef readonly uint32_t timestamp
    cdef readonly int64_t extended_timestamp
    cdef readonly int64_t first_seq
    cdef readonly int64_t last_seq
    cdef readonly uint32_t packets
    cdef readonly uint32_t ssrc
    cdef readonly int payload_type
    cdef readonly object keyframe
    cdef readonly bint continuous
    cdef readonly bint marker
    cdef readonly Vp8Descriptor descriptor
    cdef readonly object frame_marking
    cdef readonly object arrival_ms

    @property
    def picture_id(self):
        """PictureID from the descriptor, or None."""
        return self.descriptor.picture_id

    @property
    def tl0_pic_idx(self):
        """TL0PICIDX from the descriptor (else from frame marking), or None."""
        v = self.descriptor.tl0_pic_idx
        if v is None and self.frame_marking is not None:
            v = self.frame_marking.tl0_pic_idx
        return v

    @property
    def temporal_id(self):
        """Temporal layer from the descriptor (else from frame marking), or None."""
        v = self.descriptor.temporal_id
        if v is None and self.frame_marking is not None:
            v = self.frame_marking.temporal_id
        return v

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return (f"AssembledFrame(ts={self.timestamp}, seq={self.first_seq}..{self.last_seq}, "
                f"{len(self.data)} B, keyframe={self.keyframe}, continuous={self.continuous}, "
                f"picture_id={self.picture_id})")


cdef class Vp8FrameAssembler:
    """Collects VP8 RTP packets of one SSRC into complete frames, in sequence order.

    A frame is emitted when every packet from its start (S = 1, PID = 0) to its marker packet
    has arrived (reordering and duplicates are handled; packets are copied, so the caller's
    buffers may be reused).  A gap is given up -- reported by :meth:`take_losses` and flagged
    by ``continuous=False`` on the next frame -- when a complete keyframe follows it, when
    ``max_wait_frames`` complete frames wait behind it, when the first of those has waited
    ``max_wait_ms`` (with arrival times given), when a packet lands ``capacity`` packets
    ahead, or on :meth:`skip`.  Time is passed in (``arrival_ms`` / :meth:`advance`); nothing
    here reads a clock.

    Limits: a frame must fit in the window (``capacity`` packets; 1024 holds a ~1.2 MB frame at
    a 1200-byte MTU).  At start-up, packets that arrive after a later frame was already emitted
    are late (nothing said they existed); before that, a reordered earlier packet moves the
    start back.  Padding-only packets (no payload) keep their sequence number without loss.
    64 late packets in a row mean the sender started over: the assembler resets (a
    ``"reset"`` loss) and follows the new numbering.

    :param capacity: window in packets (rounded up to a power of two; at most 16384).
    :param ssrc: the SSRC to accept; default: the first valid packet's.
    :param frame_marking_id: extension id of RFC 9626 frame marking (keyframe flag readable
        without decrypting), or None.
    :param encrypted: the payload is ciphertext (SFrame): never read the VP8 keyframe bit.
    :param max_wait_frames: complete frames held behind a gap before giving it up.
    :param max_wait_ms: how long the first complete frame behind a gap may wait, ms; None: no
        limit.
    """

    cdef cp_vp8_assembler *_a
    cdef readonly object frame_marking_id
    cdef readonly bint encrypted

    def __cinit__(self, *, capacity=1024, ssrc=None, frame_marking_id=None, encrypted=False,
                  max_wait_frames=3, max_wait_ms=100.0):
        cdef cp_vp8_assembler_config cfg
        cdef int st = CP_RTP_OK
        cfg.capacity = <size_t>_uint(capacity, "capacity", 16384)
        if cfg.capacity == 0:
            raise ValueError("capacity must be at least 1 packet")
        cfg.has_ssrc = ssrc is not None
        cfg.ssrc = <uint32_t>_uint(ssrc, "ssrc", 0xFFFFFFFF) if ssrc is not None else 0
        cfg.frame_marking_id = <uint8_t>_uint(frame_marking_id, "frame_marking_id", 255) \
            if frame_marking_id is not None else 0
        if frame_marking_id == 0:
            raise ValueError("frame_marking_id must be in 1..255")
        cfg.encrypted = 1 if encrypted else 0
        cfg.max_wait_frames = <uint32_t>_uint(max_wait_frames, "max_wait_frames", 0xFFFFFFFF)
        if max_wait_ms is None:
            cfg.max_wait_ms = -1.0
        else:
            cfg.max_wait_ms = float(max_wait_ms)
            if not cfg.max_wait_ms >= 0:
                raise ValueError(f"max_wait_ms must be >= 0 or None, got {max_wait_ms!r}")
        self._a = cp_vp8_assembler_new(&cfg, &st)
        _check(st)
        self.frame_marking_id = frame_marking_id
        self.encrypted = bool(encrypted)

    def __dealloc__(self):
        # Safety net only; owners call close().
        if self._a != NULL:
            cp_vp8_assembler_free(self._a)
            self._a = NULL

    def close(self):
        """Free the window and the held packets; idempotent."""
        if self._a != NULL:
            cp_vp8_assembler_free(self._a)
            self._a = NULL

    @property
    def closed(self):
        return self._a == NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    cdef inline cp_vp8_assembler *_live(self) except NULL:
        if self._a == NULL:
            raise ClosedError("Vp8FrameAssembler is closed")
        return self._a

    cdef list _collect(self):
        cdef cp_vp8_frame_info info
        cdef AssembledFrame f
        cdef bytes data
        cdef list out = []
        while cp_vp8_assembler_ready(self._a, &info):
            data = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>info.size)
            _check(cp_vp8_assembler_take(self._a, <uint8_t *>PyBytes_AS_STRING(data),
                                         info.size))
            f = AssembledFrame.__new__(AssembledFrame)
            f.data = data
            f.timestamp = info.timestamp
            f.extended_timestamp = info.extended_timestamp
            f.first_seq = info.first_seq
            f.last_seq = info.last_seq
            f.packets = info.packets
            f.ssrc = info.ssrc
            f.payload_type = info.payload_type
            f.keyframe = None if info.keyframe < 0 else bool(info.keyframe)
            f.continuous = info.continuous
            f.marker = info.marker
            f.descriptor = _make_descriptor(&info.descriptor)
            f.frame_marking = _fm_object(&info.frame_marking) if info.has_frame_marking \
                else None
            f.arrival_ms = info.arrival_ms if info.arrival_ms >= 0 else None
            out.append(f)
        return out

    def push(self, packet, arrival_ms=None):
        """Add one RTP packet; returns the frames it completed (usually none or one).

        :param packet: the RTP packet bytes.
        :param arrival_ms: arrival time in ms on any monotonic clock, or None.
        :raises TransportError: the packet is not valid VP8 RTP or is of another SSRC (the
            assembler is unchanged and stays usable).
        """
        cdef cp_vp8_assembler *a = self._live()
        cdef Py_buffer v
        cdef int rc, outcome = 0
        cdef double t = -1.0
        if arrival_ms is not None:
            t = arrival_ms
        if type(packet) is bytes:
            rc = cp_vp8_assembler_push(a, <const uint8_t *>PyBytes_AS_STRING(packet),
                                       <size_t>PyBytes_GET_SIZE(packet), t, &outcome)
        else:
            _get(packet, &v, "packet")
            rc = cp_vp8_assembler_push(a, <const uint8_t *>v.buf, <size_t>v.len, t, &outcome)
            PyBuffer_Release(&v)
        _check(rc)
        return self._collect()

    def push_many(self, packets, arrival_ms=None):
        """Add many RTP packets in one call (the GIL is released while they are inserted);
        invalid or foreign packets are counted in :attr:`stats` and skipped.

        :param packets: a sequence of bytes-like RTP packets, in arrival order.
        :param arrival_ms: their common arrival time in ms, or None.
        :returns: the frames they completed, in order.
        """
        cdef cp_vp8_assembler *a = self._live()
        cdef list items = list(packets)
        cdef list keep = []
        cdef size_t n = len(items), done = 0, consumed = 0
        cdef double t = -1.0 if arrival_ms is None else arrival_ms
        cdef const uint8_t **ptrs = <const uint8_t **>malloc((n or 1) * sizeof(uint8_t *))
        cdef size_t *lens = <size_t *>malloc((n or 1) * sizeof(size_t))
        if ptrs == NULL or lens == NULL:
            free(ptrs); free(lens)
            raise MemoryError()
        out = []
        try:
            _gather(items, ptrs, lens, keep)
            while done < n:
                with nogil:
                    cp_vp8_assembler_push_batch(a, ptrs + done, lens + done, n - done, t,
                                                &consumed)
                done += consumed
                out.extend(self._collect())
            return out
        finally:
            free(ptrs); free(lens)

    def advance(self, now_ms):
        """Apply the ``max_wait_ms`` limit at time ``now_ms`` (no packet needed); returns the
        frames that became ready."""
        cp_vp8_assembler_advance(self._live(), float(now_ms))
        return self._collect()

    def skip(self, all=False):
        """Give up the gap at the head now (a ``"skip"`` loss) and return the frames behind
        it that are complete.  With ``all``, also give up every incomplete frame."""
        cdef cp_vp8_assembler *a = self._live()
        cp_vp8_assembler_skip(a, 1 if all else 0)
        return self._collect()

    def flush(self):
        """End of stream: return every complete frame still held, in order, and give up the
        rest (reported as ``"skip"`` losses)."""
        cdef cp_vp8_assembler *a = self._live()
        out = self._collect()
        while cp_vp8_assembler_held(a):
            cp_vp8_assembler_skip(a, 1)
            out.extend(self._collect())
        return out

    def take_losses(self):
        """The :class:`FrameLoss` records since the last call, oldest first."""
        cdef cp_vp8_assembler *a = self._live()
        cdef cp_vp8_loss l
        out = []
        while cp_vp8_assembler_pop_loss(a, &l):
            out.append(FrameLoss(_LOSS_REASONS.get(l.reason, "unknown"), l.first_seq,
                                 l.last_seq, l.packets_received, l.timestamps,
                                 l.first_timestamp if l.timestamps else None))
        return out

    def reset(self, unlock_ssrc=False):
        """Forget every held packet (a ``"reset"`` loss) and the sequence history; with
        ``unlock_ssrc`` also accept a new SSRC (unless one was given to the constructor)."""
        cp_vp8_assembler_reset(self._live(), 1 if unlock_ssrc else 0)

    @property
    def stats(self):
        """:class:`AssemblerStats` counters."""
        cdef cp_vp8_assembler *a = self._live()
        cdef cp_vp8_assembler_stats s
        cp_vp8_assembler_get_stats(a, &s)
        return AssemblerStats(s.packets, s.bytes, s.duplicates, s.late, s.invalid, s.foreign,
                              s.frames, s.keyframes, s.losses, s.packets_dropped, s.padding,
                              cp_vp8_assembler_held(a))

    @property
    def held(self):
        """Packets held right now."""
        return cp_vp8_assembler_held(self._live())
