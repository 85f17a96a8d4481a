"""A small, slow, obviously-correct RTCP parser and NACK codec in pure Python.

Written straight from RFC 3550 section 6 (SR, RR, SDES, BYE, APP, padding), RFC 4585
sections 6.1, 6.2.1 and 6.3.1 (feedback header, generic NACK, PLI), RFC 5104 section 4.3.1
(FIR) and draft-alvestrand-rmcat-remb-03 (REMB), as the reference the native parser is checked
against.  ``parse`` returns exactly the tuple shapes of ``callpipe.rtp._rtcp.parse`` and raises
:class:`ModelError` carrying the same error code names as the C enum.
"""

from __future__ import annotations

import struct

# error code names, matched against callpipe.rtp._rtcp.ERR_* by name in the tests
EMPTY, TRUNCATED, VERSION, TYPE, PADDING, FIRST, LENGTH, SDES, BYE, FEEDBACK, RESERVED = (
    "EMPTY", "TRUNCATED", "VERSION", "TYPE", "PADDING", "FIRST", "LENGTH", "SDES", "BYE",
    "FEEDBACK", "RESERVED",
)
KIND_SR, KIND_RR, KIND_SDES, KIND_BYE, KIND_APP = 1, 2, 3, 4, 5
KIND_NACK, KIND_PLI, KIND_FIR, KIND_REMB, KIND_FEEDBACK, KIND_OTHER = 6, 7, 8, 9, 10, 11


class ModelError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _u32(b: bytes, i: int) -> int:
    return int(struct.unpack_from(">I", b, i)[0])


def _block(b: bytes, i: int) -> tuple[int, int, int, int, int, int, int]:
    lost = int.from_bytes(b[i + 5 : i + 8], "big")
    if lost >= 1 << 23:
        lost -= 1 << 24
    return (_u32(b, i), b[i + 4], lost, _u32(b, i + 8), _u32(b, i + 12), _u32(b, i + 16),
            _u32(b, i + 20))


def _packet(t: int, c: int, body: bytes) -> tuple:  # type: ignore[type-arg]
    if t in (200, 201):
        fixed = 24 if t == 200 else 4
        if len(body) < fixed + 24 * c:
            raise ModelError(LENGTH)
        blocks = [_block(body, fixed + 24 * i) for i in range(c)]
        ext = body[fixed + 24 * c :]
        if t == 201:
            return (KIND_RR, _u32(body, 0), blocks, ext)
        ntp = (_u32(body, 4) << 32) | _u32(body, 8)
        return (KIND_SR, _u32(body, 0), ntp, _u32(body, 12), _u32(body, 16), _u32(body, 20),
                blocks, ext)
    if t == 202:
        items = []
        pos = 0
        for chunk in range(c):
            if len(body) - pos < 4:
                raise ModelError(SDES)
            ssrc = _u32(body, pos)
            pos += 4
            n = 0
            while True:
                if pos >= len(body):
                    raise ModelError(SDES)
                typ = body[pos]
                if typ == 0:
                    break
                if pos + 2 > len(body) or pos + 2 + body[pos + 1] > len(body):
                    raise ModelError(SDES)
                items.append((chunk, ssrc, typ, body[pos + 2 : pos + 2 + body[pos + 1]]))
                n += 1
                pos += 2 + body[pos + 1]
            end = (pos // 4 + 1) * 4  # END octet plus nulls to the 32-bit boundary
            if end > len(body) or any(body[pos:end]):
                raise ModelError(SDES)
            pos = end
            if n == 0:
                items.append((chunk, ssrc, 0, b""))
        if pos != len(body):
            raise ModelError(SDES)
        return (KIND_SDES, items)
    if t == 203:
        if len(body) < 4 * c:
            raise ModelError(LENGTH)
        ssrcs = [_u32(body, 4 * i) for i in range(c)]
        rest = body[4 * c :]
        reason = None
        if rest:
            n = rest[0]
            if 1 + n > len(rest) or (1 + n + 3) // 4 * 4 != len(rest) or any(rest[1 + n :]):
                raise ModelError(BYE)
            reason = rest[1 : 1 + n]
        return (KIND_BYE, ssrcs, reason)
    if t == 204:
        if len(body) < 8:
            raise ModelError(LENGTH)
        return (KIND_APP, c, _u32(body, 0), body[4:8], body[8:])
    if t in (205, 206):
        if len(body) < 8:
            raise ModelError(LENGTH)
        sender, media, fci = _u32(body, 0), _u32(body, 4), body[8:]
        if t == 205 and c == 1:
            if not fci:
                raise ModelError(FEEDBACK)
            items = [struct.unpack_from(">HH", fci, i) for i in range(0, len(fci), 4)]
            return (KIND_NACK, sender, media, [(int(p), int(b)) for p, b in items])
        if t == 206 and c == 1:
            if fci:
                raise ModelError(FEEDBACK)
            return (KIND_PLI, sender, media)
        if t == 206 and c == 4:
            if not fci or len(fci) % 8:
                raise ModelError(FEEDBACK)
            entries = []
            for i in range(0, len(fci), 8):
                if fci[i + 5 : i + 8] != b"\0\0\0":
                    raise ModelError(RESERVED)
                entries.append((_u32(fci, i), fci[i + 4]))
            return (KIND_FIR, sender, media, entries)
        if t == 206 and c == 15 and fci[:4] == b"REMB":
            if len(fci) < 8 or len(fci) != 8 + 4 * fci[4]:
                raise ModelError(FEEDBACK)
            exp = fci[5] >> 2
            mant = ((fci[5] & 3) << 16) | (fci[6] << 8) | fci[7]
            return (KIND_REMB, sender, media, exp, mant,
                    [_u32(fci, 8 + 4 * i) for i in range(fci[4])])
        return (KIND_FEEDBACK, t, c, sender, media, fci)
    return (KIND_OTHER, t, c, body)


def parse(data: bytes, reduced_size: bool = True) -> tuple[list, bytes]:  # type: ignore[type-arg]
    if not data:
        raise ModelError(EMPTY)
    out = []
    pos = 0
    padding = b""
    while pos < len(data):
        if len(data) - pos < 4:
            raise ModelError(TRUNCATED)
        v, p, c, t = data[pos] >> 6, (data[pos] >> 5) & 1, data[pos] & 31, data[pos + 1]
        if v != 2:
            raise ModelError(VERSION)
        if not 192 <= t <= 223:
            raise ModelError(TYPE)
        size = 4 * (struct.unpack_from(">H", data, pos + 2)[0] + 1)
        if pos + size > len(data):
            raise ModelError(TRUNCATED)
        if not out and not reduced_size and t not in (200, 201):
            raise ModelError(FIRST)
        pkt = data[pos : pos + size]
        body = pkt[4:]
        if p:
            n = pkt[-1]
            if pos + size != len(data) or n == 0 or n % 4 or n > size - 4:
                raise ModelError(PADDING)
            padding = pkt[size - n :]
            body = pkt[4 : size - n]
        out.append(_packet(t, c, body))
        pos += size
    return out, padding


def nack_pack(seqs: list[int]) -> list[tuple[int, int]]:
    """Greedy (PID, BLP) packing in the given order, as RFC 4585 section 6.2.1 describes."""
    items: list[list[int]] = []
    for s in seqs:
        if items:
            d = (s - items[-1][0]) % 65536
            if d == 0:
                continue
            if d <= 16:
                items[-1][1] |= 1 << (d - 1)
                continue
        items.append([s, 0])
    return [(p, b) for p, b in items]


def nack_unpack(items: list[tuple[int, int]]) -> list[int]:
    out = []
    for pid, blp in items:
        out.append(pid)
        out.extend((pid + i + 1) % 65536 for i in range(16) if blp >> i & 1)
    return out
