"""A small, slow, obviously-correct RTP / RFC 8285 / RFC 7741 model in pure Python.

Written from the RFC text and figures (RFC 3550 section 5.1 and 5.3.1, RFC 8285 sections 4.2
and 4.3, RFC 7741 section 4.2) as the reference the native code in ``native/src/cp_rtp.c`` is
checked against (differential tests).  Errors are returned as the status names of
``callpipe.rtp._rtp.ERROR_NAMES``; the checks run in the order the C code documents, so both
sides must report the same defect for the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

ONE_BYTE = 0xBEDE


@dataclass(frozen=True)
class ModelPacket:
    marker: bool
    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    csrcs: tuple[int, ...]
    extension_profile: int | None
    extension_data: bytes
    payload: bytes
    padding: bytes


def ext_form(profile: int) -> str:
    if profile == ONE_BYTE:
        return "one-byte"
    if profile >> 4 == 0x100:
        return "two-byte"
    return "other"


def ext_elements(profile: int, block: bytes) -> list[tuple[int, bytes]] | str:
    """RFC 8285 elements of a block, or the status name of the defect."""
    form = ext_form(profile)
    out: list[tuple[int, bytes]] = []
    if form == "other":
        return out
    i = 0
    while i < len(block):
        b = block[i]
        if b == 0:  # padding
            i += 1
            continue
        if form == "one-byte":
            eid, length = b >> 4, (b & 0x0F) + 1
            if eid == 15:  # reserved: stop processing
                return out
            if eid == 0:
                return "EXT_ID"
            start = i + 1
        else:
            if i + 2 > len(block):
                return "EXT_ELEMENT"
            eid, length = b, block[i + 1]
            start = i + 2
        if start + length > len(block):
            return "EXT_ELEMENT"
        out.append((eid, block[start : start + length]))
        i = start + length
    return out


def parse(data: bytes) -> ModelPacket | str:
    """The packet, or the status name of its first defect."""
    if len(data) < 12:
        return "TRUNCATED"
    if data[0] >> 6 != 2:
        return "VERSION"
    padding_bit, ext_bit, cc = (data[0] >> 5) & 1, (data[0] >> 4) & 1, data[0] & 0x0F
    off = 12
    if len(data) < off + 4 * cc:
        return "CSRC"
    csrcs = tuple(int.from_bytes(data[off + 4 * i : off + 4 * i + 4], "big") for i in range(cc))
    off += 4 * cc
    profile = None
    block = b""
    if ext_bit:
        if len(data) < off + 4:
            return "EXT_HEADER"
        profile = int.from_bytes(data[off : off + 2], "big")
        words = int.from_bytes(data[off + 2 : off + 4], "big")
        off += 4
        if len(data) < off + 4 * words:
            return "EXT_LENGTH"
        block = data[off : off + 4 * words]
        elems = ext_elements(profile, block)
        if isinstance(elems, str):
            return elems
        off += 4 * words
    pad = 0
    if padding_bit:
        if len(data) == off:
            return "PADDING_LENGTH"
        pad = data[-1]
        if pad == 0:
            return "PADDING_ZERO"
        if pad > len(data) - off:
            return "PADDING_LENGTH"
    return ModelPacket(
        marker=bool(data[1] >> 7),
        payload_type=data[1] & 0x7F,
        sequence_number=int.from_bytes(data[2:4], "big"),
        timestamp=int.from_bytes(data[4:8], "big"),
        ssrc=int.from_bytes(data[8:12], "big"),
        csrcs=csrcs,
        extension_profile=profile,
        extension_data=block,
        payload=data[off : len(data) - pad],
        padding=data[len(data) - pad :] if pad else b"",
    )


def serialize(p: ModelPacket) -> bytes:
    has_ext = p.extension_profile is not None
    out = bytearray()
    out.append(0x80 | (0x20 if p.padding else 0) | (0x10 if has_ext else 0) | len(p.csrcs))
    out.append((0x80 if p.marker else 0) | p.payload_type)
    out += p.sequence_number.to_bytes(2, "big")
    out += p.timestamp.to_bytes(4, "big")
    out += p.ssrc.to_bytes(4, "big")
    for c in p.csrcs:
        out += c.to_bytes(4, "big")
    if has_ext:
        assert p.extension_profile is not None
        out += p.extension_profile.to_bytes(2, "big")
        out += (len(p.extension_data) // 4).to_bytes(2, "big")
        out += p.extension_data
    return bytes(out) + p.payload + p.padding


def build_block(elems: list[tuple[int, bytes]], form: str) -> tuple[int, bytes]:
    """(profile, block) with the elements back to back and zero padding at the end."""
    out = bytearray()
    for eid, data in elems:
        if form == "one-byte":
            assert 1 <= eid <= 14 and 1 <= len(data) <= 16
            out.append(eid << 4 | (len(data) - 1))
        else:
            assert 1 <= eid <= 255 and len(data) <= 255
            out += bytes([eid, len(data)])
        out += data
    out += bytes(-len(out) % 4)
    return (ONE_BYTE if form == "one-byte" else 0x1000), bytes(out)


# -- RFC 7741 ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelDescriptor:
    extended: bool = False
    non_reference: bool = False
    start: bool = False
    partition_id: int = 0
    picture_id: int | None = None
    long_picture_id: bool = True
    tl0_pic_idx: int | None = None
    temporal_id: int | None = None
    layer_sync: bool = False
    key_idx: int | None = None
    size: int = 1


def parse_vp8(payload: bytes) -> ModelDescriptor | str:
    if not payload:
        return "VP8_EMPTY"
    b = payload[0]
    x = bool(b & 0x80)
    fields: dict[int | str, object] = {}
    i = 1
    pid = tl0 = tid = key = None
    long_pid, sync = True, False
    if x:
        if i >= len(payload):
            return "VP8_TRUNCATED"
        flags = payload[i]
        i += 1
        if flags & 0x80:
            if i >= len(payload):
                return "VP8_TRUNCATED"
            if payload[i] & 0x80:
                if i + 1 >= len(payload):
                    return "VP8_TRUNCATED"
                pid = (payload[i] & 0x7F) << 8 | payload[i + 1]
                i += 2
            else:
                pid, long_pid = payload[i], False
                i += 1
        if flags & 0x40:
            if i >= len(payload):
                return "VP8_TRUNCATED"
            tl0 = payload[i]
            i += 1
        if flags & 0x30:
            if i >= len(payload):
                return "VP8_TRUNCATED"
            tk = payload[i]
            i += 1
            if flags & 0x20:
                tid, sync = tk >> 6, bool(tk & 0x20)
            if flags & 0x10:
                key = tk & 0x1F
    del fields
    if i >= len(payload):
        return "VP8_NO_DATA"
    return ModelDescriptor(
        extended=x,
        non_reference=bool(b & 0x20),
        start=bool(b & 0x10),
        partition_id=b & 7,
        picture_id=pid,
        long_picture_id=long_pid if pid is not None else True,
        tl0_pic_idx=tl0,
        temporal_id=tid,
        layer_sync=sync,
        key_idx=key,
        size=i,
    )


def write_vp8(d: ModelDescriptor) -> bytes:
    x = d.extended or any(
        v is not None for v in (d.picture_id, d.tl0_pic_idx, d.temporal_id, d.key_idx)
    )
    out = bytearray(
        [(0x80 if x else 0) | (0x20 if d.non_reference else 0) | (0x10 if d.start else 0)
         | d.partition_id]
    )
    if x:
        out.append(
            (0x80 if d.picture_id is not None else 0)
            | (0x40 if d.tl0_pic_idx is not None else 0)
            | (0x20 if d.temporal_id is not None else 0)
            | (0x10 if d.key_idx is not None else 0)
        )
        if d.picture_id is not None:
            if d.long_picture_id:
                out += bytes([0x80 | d.picture_id >> 8, d.picture_id & 0xFF])
            else:
                out.append(d.picture_id)
        if d.tl0_pic_idx is not None:
            out.append(d.tl0_pic_idx)
        if d.temporal_id is not None or d.key_idx is not None:
            tk = 0
            if d.temporal_id is not None:
                tk |= d.temporal_id << 6 | (0x20 if d.layer_sync else 0)
            if d.key_idx is not None:
                tk |= d.key_idx
            out.append(tk)
    return bytes(out)


def packetize(frame: bytes, mtu: int, descriptor: ModelDescriptor) -> list[bytes]:
    """RTP payloads: balanced split (sizes differ by at most one byte, larger ones first)."""
    first = write_vp8(ModelDescriptor(**{**descriptor.__dict__, "start": True}))
    rest = write_vp8(ModelDescriptor(**{**descriptor.__dict__, "start": False}))
    room = mtu - len(first)
    count = -(-len(frame) // room)
    base, extra = divmod(len(frame), count)
    out, pos = [], 0
    for i in range(count):
        n = base + (1 if i < extra else 0)
        out.append((first if i == 0 else rest) + frame[pos : pos + n])
        pos += n
    return out


# -- sequence numbers -------------------------------------------------------------------------
def diff(a: int, b: int, bits: int) -> int:
    """a - b to the nearest value; exactly half the range counts as backwards."""
    half = 1 << (bits - 1)
    d = (a - b) % (1 << bits)
    return d - (1 << bits) if d >= half else d


class ModelUnwrapper:
    def __init__(self, bits: int) -> None:
        self.bits = bits
        self.last: int | None = None

    def unwrap(self, value: int) -> int:
        if self.last is None:
            self.last = value
        else:
            self.last = self.last + diff(value, self.last % (1 << self.bits), self.bits)
        return self.last
