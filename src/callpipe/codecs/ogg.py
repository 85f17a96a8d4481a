"""Ogg Opus files (RFC 7845 over the Ogg framing of RFC 3533), pure Python.

:class:`OggOpusWriter` stores Opus packets as a single-stream ``.opus`` file that opusdec,
FFmpeg and browsers play; :class:`OggOpusReader` reads one back (or any single Opus stream made
by opusenc, FFmpeg, ...) packet by packet, checking every page CRC.

Time in Ogg Opus is counted in samples at 48 kHz whatever the encoder's rate: a page's
*granule position* is the number of samples decoded up to the end of the last packet completed
on it, counting the ``pre_skip`` samples of codec delay at the start, which a player discards.
The last page's granule position may be smaller than that sum: the extra samples at the end of
the last packet (``end_trim``) are discarded too.

Malformed or truncated files raise :class:`~callpipe.errors.CodecError` naming the byte offset.
"""

from __future__ import annotations

import io
import os
import secrets
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from .._lifetime import Closeable
from ..errors import ClosedError, CodecError

__all__ = [
    "OggOpusWriter",
    "OggOpusReader",
    "OggOpusPacket",
    "ogg_crc32",
    "opus_packet_samples",
    "OPUS_GRANULE_RATE",
]

#: Clock rate of Ogg Opus granule positions and pre-skip, in Hz.
OPUS_GRANULE_RATE = 48000

# -- Ogg CRC ------------------------------------------------------------------------------
# RFC 3533 section 6: CRC-32, generator 0x04C11DB7, initial value 0, no bit reflection, no final
# XOR, computed over the whole page with the CRC field set to zero.  zlib's crc32 is the
# bit-reflected twin of that CRC (with 0xFFFFFFFF pre/post conditioning), so running it over
# bit-reversed bytes with a zero register and bit-reversing the result gives the Ogg CRC at C
# speed.  tests/test_opus.py checks this against a plain table-driven model.
_REV8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _rev32(x: int) -> int:
    return int(f"{x:032b}"[::-1], 2)


def ogg_crc32(data: bytes | bytearray | memoryview) -> int:
    """The Ogg page checksum (RFC 3533) of ``data`` (bytes)."""
    raw = zlib.crc32(bytes(data).translate(_REV8), 0xFFFF_FFFF) ^ 0xFFFF_FFFF
    return _rev32(raw)


# -- Opus packet duration (RFC 6716 section 3.1) ----------------------------------------------
#   0 1 2 3 4 5 6 7
#  +-+-+-+-+-+-+-+-+
#  | config  |s| c |     TOC byte: config -> mode, bandwidth, frame duration;
#  +-+-+-+-+-+-+-+-+     s = stereo; c = frame count code (0: 1, 1/2: 2, 3: arbitrary, next byte)
_FRAME_48K = (
    [480, 960, 1920, 2880] * 3  # configs 0..11: SILK 10/20/40/60 ms (NB, MB, WB)
    + [480, 960] * 2  # configs 12..15: Hybrid 10/20 ms (SWB, FB)
    + [120, 240, 480, 960] * 4  # configs 16..31: CELT 2.5/5/10/20 ms (NB, WB, SWB, FB)
)
_MAX_PACKET_48K = 5760  # 120 ms


def opus_packet_samples(packet: bytes | bytearray | memoryview) -> int:
    """Duration of an Opus packet in samples at 48 kHz, from its TOC byte (RFC 6716 §3.1).

    :param packet: one Opus packet (bytes).
    :raises CodecError: for an empty packet or an impossible frame count.
    """
    if len(packet) < 1:
        raise CodecError("empty Opus packet")
    toc = packet[0]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        if len(packet) < 2:
            raise CodecError("Opus packet with frame count code 3 lacks its frame count byte")
        count = packet[1] & 0x3F
        if count == 0:
            raise CodecError("Opus packet declares 0 frames")
    n = count * _FRAME_48K[toc >> 3]
    if n > _MAX_PACKET_48K:
        raise CodecError(f"Opus packet declares {n / 48:g} ms of audio (more than 120 ms)")
    return n


# -- Ogg page (RFC 3533 section 6) -----------------------------------------------------------
#  0                   1                   2                   3
#  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1  Byte
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# | capture_pattern: Magic number for page start "OggS"           | 0-3
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# | version       | header_type   | granule_position              | 4-7
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                                                               | 8-11
# +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                               | bitstream_serial_number       | 12-15
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                               | page_sequence_number          | 16-19
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                               | CRC_checksum                  | 20-23
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# |                               |page_segments  | segment_table | 24-27
# +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# | ...                                                           | 28-
# All fields little-endian.  header_type: 0x01 continued packet, 0x02 first page (BOS) of a
# stream, 0x04 last page (EOS).  The segment table holds page_segments lacing values; a packet
# is the concatenation of its segments, a value < 255 ending it (a packet of n*255 bytes ends
# with a 0).  A granule position of -1 means no packet ends on the page.
_PAGE = struct.Struct("<4sBBqIIIB")
_CONTINUED, _BOS, _EOS = 0x01, 0x02, 0x04
_MAX_PACKET_BYTES = 254 * 255 + 254  # the longest packet that fits on one page (255 segments)


def _page(flags: int, granule: int, serial: int, seq: int, packets: Sequence[bytes]) -> bytes:
    lacing = bytearray()
    for p in packets:
        full, rest = divmod(len(p), 255)
        lacing += b"\xff" * full
        lacing.append(rest)
    if len(lacing) > 255:
        raise CodecError(f"{len(lacing)} lacing values do not fit on one Ogg page (max 255)")
    head = _PAGE.pack(b"OggS", 0, flags, granule, serial, seq, 0, len(lacing))
    page = bytearray(head + lacing + b"".join(packets))
    struct.pack_into("<I", page, 22, ogg_crc32(page))
    return bytes(page)


# -- Opus headers (RFC 7845 section 5) -------------------------------------------------------
#  ID header ("OpusHead"), alone on the first page:
#  'O' 'p' 'u' 's' 'H' 'e' 'a' 'd' | version (1) | channel count | pre-skip (u16, 48 kHz
#  samples) | input sample rate (u32, Hz, informational) | output gain (s16, Q7.8 dB) |
#  mapping family | [family != 0: stream count, coupled count, channel mapping[channels]]
#  Comment header ("OpusTags"), starting the second page:
#  'O' 'p' 'u' 's' 'T' 'a' 'g' 's' | vendor length (u32) | vendor (UTF-8) |
#  comment count (u32) | count x (length (u32) | "KEY=value" UTF-8)
_HEAD = struct.Struct("<8sBBHIhB")


@dataclass(frozen=True, slots=True)
class OggOpusPacket:
    """One Opus packet read from an Ogg Opus file.

    :param data: the Opus packet (bytes).
    :param samples: its duration in samples at 48 kHz (from its TOC byte).
    :param granule_position: samples at 48 kHz decoded from the start of the stream up to the
        end of this packet, counting ``pre_skip`` and after any end trimming.
    :param end_trim: samples at 48 kHz to drop from the end of the decoded audio (non-zero
        only on the stream's last packet; may exceed ``samples`` when a file trims more than
        its last packet).
    """

    data: bytes
    samples: int
    granule_position: int
    end_trim: int = 0


class OggOpusWriter(Closeable):
    """Writes Opus packets into a single-stream Ogg Opus file (channel mapping family 0).

    Pages hold up to ``max_page_ms`` of audio; the last page, written by :meth:`close`, carries
    the end-of-stream flag.

    :param path: file to create (overwritten).
    :param sample_rate_in: the encoder's input rate in Hz (informational: decoders output
        48 kHz), 1..4294967295.
    :param channels: 1 or 2, as the packets were encoded.
    :param pre_skip: codec delay in samples at 48 kHz for players to discard at the start:
        ``OpusEncoder.lookahead * 48000 // sample_rate`` (312 for libopus voip/audio).
    :param vendor: vendor string of the OpusTags header.
    :param comments: ``"KEY=value"`` user comments of the OpusTags header.
    :param serial: Ogg stream serial number (32-bit); random when ``None``.
    :param max_page_ms: audio per page in ms, 20..10000 (smaller pages lose less on a crash).
    :raises CodecError: on an invalid parameter or when the file cannot be created.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        sample_rate_in: int = 48000,
        channels: int = 1,
        pre_skip: int = 312,
        *,
        vendor: str = "callpipe",
        comments: Sequence[str] = (),
        serial: int | None = None,
        max_page_ms: int = 1000,
    ) -> None:
        self._f: BinaryIO | None = None
        if type(channels) is not int or channels not in (1, 2):
            raise CodecError(f"channels must be 1 or 2, got {channels!r}")
        if type(sample_rate_in) is not int or not 0 < sample_rate_in <= 0xFFFF_FFFF:
            raise CodecError(f"sample_rate_in must be a positive integer in Hz, got "
                             f"{sample_rate_in!r}")
        if type(pre_skip) is not int or not 0 <= pre_skip <= 0xFFFF:
            raise CodecError(f"pre_skip must be 0..65535 samples at 48 kHz, got {pre_skip!r}")
        if serial is None:
            serial = secrets.randbits(32)
        if type(serial) is not int or not 0 <= serial <= 0xFFFF_FFFF:
            raise CodecError(f"serial must be a 32-bit unsigned integer, got {serial!r}")
        if type(max_page_ms) is not int or not 20 <= max_page_ms <= 10_000:
            raise CodecError(f"max_page_ms must be 20..10000 ms, got {max_page_ms!r}")
        if not isinstance(vendor, str) or isinstance(comments, str) or not all(
            isinstance(c, str) for c in comments
        ):
            raise CodecError("vendor must be a str and comments a sequence of str")
        self.channels = channels
        """Channel count written in OpusHead."""
        self.pre_skip = pre_skip
        """Pre-skip in samples at 48 kHz."""
        self.input_sample_rate = sample_rate_in
        """Input sample rate in Hz written in OpusHead."""
        self.serial = serial
        """Ogg stream serial number."""
        self._max_page = max_page_ms * OPUS_GRANULE_RATE // 1000
        self._seq = 0
        self._granule = 0
        self._pending: list[bytes] = []
        self._pending_samples = 0
        self._pending_lacing = 0
        self._ended = False
        self.packets_written = 0
        """Opus packets written so far."""

        head = _HEAD.pack(b"OpusHead", 1, channels, pre_skip, sample_rate_in, 0, 0)
        vend = vendor.encode("utf-8")
        tags = bytearray(b"OpusTags" + struct.pack("<I", len(vend)) + vend)
        tags += struct.pack("<I", len(comments))
        for c in comments:
            cb = c.encode("utf-8")
            tags += struct.pack("<I", len(cb)) + cb
        try:
            self._f = open(path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise CodecError(f"cannot create Ogg Opus file {os.fspath(path)!r}: {e}") from None
        self._emit(_BOS, 0, [head])
        self._write_tags(bytes(tags))

    def _write_tags(self, tags: bytes) -> None:
        # The comment header may span pages: every page but the last holds 255 full segments
        # (granule -1: no packet ends there); the last holds the rest (< 255 * 255 bytes).
        chunk = 255 * 255
        full = len(tags) // chunk
        for i in range(full):
            piece = tags[i * chunk : (i + 1) * chunk]
            head = _PAGE.pack(
                b"OggS", 0, _CONTINUED if i else 0, -1, self.serial, self._seq, 0, 255
            )
            page = bytearray(head + b"\xff" * 255 + piece)
            struct.pack_into("<I", page, 22, ogg_crc32(page))
            self._raw(bytes(page))
        self._emit(_CONTINUED if full else 0, 0, [tags[full * chunk :]])

    def _raw(self, page: bytes) -> None:
        assert self._f is not None
        try:
            self._f.write(page)
        except OSError as e:
            raise CodecError(f"cannot write Ogg page: {e}") from None
        self._seq += 1

    def _emit(self, flags: int, granule: int, packets: Sequence[bytes]) -> None:
        self._raw(_page(flags, granule, self.serial, self._seq, packets))

    def _flush(self, flags: int = 0) -> None:
        self._emit(flags, self._granule, self._pending)
        self._pending = []
        self._pending_samples = 0
        self._pending_lacing = 0

    @property
    def granule_position(self) -> int:
        """Samples at 48 kHz written so far, counting ``pre_skip`` (the next page's granule)."""
        return self._granule

    def write(self, packet: bytes | bytearray | memoryview, samples: int | None = None) -> None:
        """Append one Opus packet.

        :param packet: one complete Opus packet (bytes, 1..65024 bytes).
        :param samples: its duration in samples **at 48 kHz**; default: read from the packet's
            TOC byte.  A smaller value trims the end of the stream (RFC 7845 §4.4) and makes
            this packet the last one.
        :raises CodecError: for an invalid packet or ``samples``, or a write after a trimmed
            packet.
        :raises ClosedError: after :meth:`close`.
        """
        if self._f is None:
            raise ClosedError("OggOpusWriter is closed")
        if not isinstance(packet, (bytes, bytearray, memoryview)):
            raise CodecError(f"an Opus packet must be bytes-like, got {type(packet).__name__}")
        data = bytes(packet)
        if not 1 <= len(data) <= _MAX_PACKET_BYTES:
            raise CodecError(f"Opus packet must be 1..{_MAX_PACKET_BYTES} bytes, got {len(data)}")
        if self._ended:
            raise CodecError("the stream was ended by a packet with trimmed samples")
        dur = opus_packet_samples(data)
        if samples is None:
            samples = dur
        elif isinstance(samples, bool) or not isinstance(samples, int) or not 0 <= samples <= dur:
            raise CodecError(
                f"samples must be 0..{dur} (this packet's duration in samples at 48 kHz), "
                f"got {samples!r}"
            )
        lacing = len(data) // 255 + 1
        if self._pending and (
            self._pending_lacing + lacing > 255 or self._pending_samples >= self._max_page
        ):
            self._flush()
        self._pending.append(data)
        self._pending_lacing += lacing
        self._pending_samples += dur
        self._granule += samples
        self.packets_written += 1
        if samples < dur:
            self._ended = True

    def close(self) -> None:
        """Write the last page (end of stream) and close the file (idempotent)."""
        f = self._f
        if f is None:
            return
        try:
            self._flush(_EOS)
        finally:
            self._f = None
            f.close()

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._f is None


@dataclass(slots=True)
class _Page:
    offset: int
    flags: int
    granule: int
    serial: int
    seq: int
    lacing: bytes
    body: bytes


class OggOpusReader(Closeable):
    """Reads the Opus packets of a single-stream Ogg Opus file, checking every page CRC.

    The headers are parsed on opening; iterating yields :class:`OggOpusPacket` s in order (each
    iteration starts again from the first audio packet).  Pages of other logical streams
    multiplexed into the file are skipped; chained streams are not supported.

    :param path: the ``.opus`` / ``.ogg`` file to read.
    :raises CodecError: when the file is missing, not Ogg Opus, corrupt or truncated.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._f: BinaryIO | None = None
        self._path = os.fspath(path)
        self._serial: int | None = None
        self._first_audio_offset = 0
        self._tags_seq = 0
        self._head_eos = False
        try:
            self._f = open(path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as e:
            raise CodecError(f"cannot open Ogg Opus file {self._path!r}: {e}") from None
        try:
            self._read_headers()
        except BaseException:
            self.close()
            raise

    # -- pages ------------------------------------------------------------------------------
    def _read_page(self) -> _Page | None:
        f = self._f
        if f is None:
            raise ClosedError("OggOpusReader is closed")
        offset = f.tell()
        head = f.read(_PAGE.size)
        if not head:
            return None
        if len(head) < _PAGE.size:
            raise CodecError(f"{self._path}: truncated Ogg page header at byte {offset}")
        magic, version, flags, granule, serial, seq, crc, nseg = _PAGE.unpack(head)
        if magic != b"OggS":
            raise CodecError(f"{self._path}: no Ogg page at byte {offset} (not an Ogg file?)")
        if version != 0:
            raise CodecError(f"{self._path}: unsupported Ogg version {version} at byte {offset}")
        lacing = f.read(nseg)
        body = f.read(sum(lacing)) if len(lacing) == nseg else b""
        if len(lacing) < nseg or len(body) < sum(lacing):
            raise CodecError(f"{self._path}: truncated Ogg page at byte {offset}")
        check = bytearray(head + lacing + body)
        check[22:26] = b"\0\0\0\0"
        if ogg_crc32(check) != crc:
            raise CodecError(f"{self._path}: CRC mismatch in the Ogg page at byte {offset}")
        return _Page(offset, flags, granule, serial, seq, lacing, body)

    def _pages(self) -> Iterator[_Page]:
        """Pages of the Opus stream, with sequence-number checks."""
        expect_seq: int | None = None
        while True:
            page = self._read_page()
            if page is None:
                if self._serial is None:
                    raise CodecError(f"{self._path}: empty file, or no Opus stream in it")
                return
            if self._serial is None:
                if not page.flags & _BOS:
                    raise CodecError(
                        f"{self._path}: no Opus stream (no OpusHead among the start pages)"
                    )
                if page.body[:8] != b"OpusHead":
                    continue  # another multiplexed stream's start page
                self._serial = page.serial
            elif page.serial != self._serial:
                continue
            if expect_seq is not None and page.seq != expect_seq:
                raise CodecError(
                    f"{self._path}: Ogg page {page.seq} at byte {page.offset} follows page "
                    f"{expect_seq - 1}: pages are missing"
                )
            expect_seq = (page.seq + 1) & 0xFFFF_FFFF
            yield page

    def _packets(self, pages: Iterator[_Page]) -> Iterator[tuple[_Page, list[bytes]]]:
        """(page, packets completed on it), reassembling packets that span pages."""
        partial: bytearray | None = None
        for page in pages:
            done: list[bytes] = []
            if page.flags & _CONTINUED:
                if partial is None:
                    raise CodecError(
                        f"{self._path}: Ogg page at byte {page.offset} continues a packet "
                        "that never started"
                    )
            elif partial is not None:
                raise CodecError(
                    f"{self._path}: packet cut short before the Ogg page at byte {page.offset}"
                )
            pos = 0
            cur = partial if partial is not None else bytearray()
            for v in page.lacing:
                cur += page.body[pos : pos + v]
                pos += v
                if v < 255:
                    done.append(bytes(cur))
                    cur = bytearray()
            if page.lacing:  # (a page without segments leaves a partial packet as it was)
                partial = cur if page.lacing[-1] == 255 else None
            yield page, done
            if page.flags & _EOS:
                if partial is not None:
                    raise CodecError(f"{self._path}: the last Ogg page ends inside a packet")
                return
        raise CodecError(f"{self._path}: the Ogg Opus stream ends without its last page "
                         "(truncated file?)")

    # -- headers ----------------------------------------------------------------------------
    def _read_headers(self) -> None:
        stream = self._packets(self._pages())
        page, packets = next(stream)  # _pages raises when there is no Opus stream
        if len(packets) != 1 or page.granule != 0:
            raise CodecError(f"{self._path}: OpusHead must be alone on the first page")
        self._parse_head(packets[0])
        tags: list[bytes] = []
        while not tags:
            try:
                page, tags = next(stream)
            except StopIteration:
                raise CodecError(f"{self._path}: no OpusTags header (truncated?)") from None
        if len(tags) != 1:
            raise CodecError(f"{self._path}: audio data shares the page of the OpusTags header")
        self._parse_tags(tags[0])
        assert self._f is not None
        self._first_audio_offset = self._f.tell()
        self._tags_seq = page.seq
        self._head_eos = bool(page.flags & _EOS)

    def _parse_head(self, p: bytes) -> None:
        if p[:8] != b"OpusHead":
            raise CodecError(f"{self._path}: not an Opus stream (no OpusHead)")
        if len(p) < _HEAD.size:
            raise CodecError(f"{self._path}: OpusHead is {len(p)} bytes, shorter than 19")
        _, version, channels, pre_skip, rate, gain, family = _HEAD.unpack_from(p)
        if version >> 4:
            raise CodecError(f"{self._path}: unsupported OpusHead version {version}")
        if channels == 0:
            raise CodecError(f"{self._path}: OpusHead declares 0 channels")
        if family == 0:
            if channels > 2:
                raise CodecError(f"{self._path}: mapping family 0 with {channels} channels")
            streams, coupled, mapping = 1, channels - 1, bytes(range(channels))
        else:
            if len(p) < _HEAD.size + 2 + channels:
                raise CodecError(f"{self._path}: OpusHead channel mapping table is truncated")
            streams, coupled = p[_HEAD.size], p[_HEAD.size + 1]
            mapping = p[_HEAD.size + 2 : _HEAD.size + 2 + channels]
            if streams == 0 or coupled > streams or any(
                m != 255 and m >= streams + coupled for m in mapping
            ):
                raise CodecError(f"{self._path}: invalid OpusHead channel mapping")
        self.channels: int = channels
        """Output channel count."""
        self.pre_skip: int = pre_skip
        """Samples at 48 kHz to discard from the start of the decoded audio."""
        self.input_sample_rate: int = rate
        """Sample rate of the original input in Hz (informational; 0 when unknown)."""
        self.output_gain_db: float = gain / 256.0
        """Gain to apply on output, in dB."""
        self.mapping_family: int = family
        """Channel mapping family (0: mono/stereo, one Opus stream; others: multistream)."""
        self.stream_count: int = streams
        """Opus streams per packet (1 for family 0)."""
        self.coupled_count: int = coupled
        """Stereo-coupled streams among them."""
        self.channel_mapping: bytes = bytes(mapping)
        """Output channel -> decoded channel table."""

    def _parse_tags(self, p: bytes) -> None:
        if p[:8] != b"OpusTags":
            raise CodecError(f"{self._path}: the second Opus header is not OpusTags")
        r = io.BytesIO(p)
        r.seek(8)

        def take(n: int) -> bytes:
            b = r.read(n)
            if len(b) != n:
                raise CodecError(f"{self._path}: OpusTags header is truncated")
            return b

        (vlen,) = struct.unpack("<I", take(4))
        self.vendor: str = take(vlen).decode("utf-8", "replace")
        """Vendor string of the encoder that wrote the file."""
        (count,) = struct.unpack("<I", take(4))
        if count > len(p) // 4:
            raise CodecError(f"{self._path}: OpusTags declares {count} comments, too many")
        comments = []
        for _ in range(count):
            (clen,) = struct.unpack("<I", take(4))
            comments.append(take(clen).decode("utf-8", "replace"))
        self.comments: list[str] = comments
        """User comments (``"KEY=value"``)."""

    # -- packets ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[OggOpusPacket]:
        """Yield the audio packets from the first, with granule positions and end trim."""
        f = self._f
        if f is None:
            raise ClosedError("OggOpusReader is closed")
        if self._head_eos:
            return
        f.seek(self._first_audio_offset)
        running: int | None = None
        for page, packets in self._packets(self._pages_from(self._tags_seq)):
            if not packets:
                continue
            durs = [opus_packet_samples(p) for p in packets]
            total = sum(durs)
            eos = bool(page.flags & _EOS)
            gp = page.granule
            if running is None:  # RFC 7845 4.3: start = first granule - its packets' samples
                running = gp - total if gp >= 0 else 0
                if running < 0:
                    if not eos:
                        raise CodecError(
                            f"{self._path}: first audio page at byte {page.offset} has a "
                            f"granule position ({gp}) smaller than its audio ({total} samples)"
                        )
                    running = 0
            end = running + total
            trim = 0
            if gp >= 0 and gp != end:
                if gp < end:
                    if not eos:
                        raise CodecError(
                            f"{self._path}: granule position goes backwards at the Ogg page "
                            f"at byte {page.offset}"
                        )
                    trim = end - gp
                else:  # a gap in time: follow the page (its last packet ends at gp)
                    running = gp - total
            for i, (p, d) in enumerate(zip(packets, durs, strict=True)):
                running += d
                last = i == len(packets) - 1
                yield OggOpusPacket(
                    p, d, running - trim if last else running, trim if last else 0
                )

    def _pages_from(self, prev_seq: int) -> Iterator[_Page]:
        assert self._serial is not None
        expect = (prev_seq + 1) & 0xFFFF_FFFF
        while True:
            page = self._read_page()
            if page is None:
                return
            if page.serial != self._serial:
                if page.flags & _BOS:
                    raise CodecError(f"{self._path}: chained Ogg streams are not supported")
                continue
            if page.seq != expect:
                raise CodecError(
                    f"{self._path}: Ogg page {page.seq} at byte {page.offset} follows page "
                    f"{(expect - 1) & 0xFFFF_FFFF}: pages are missing"
                )
            expect = (page.seq + 1) & 0xFFFF_FFFF
            yield page

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the file (idempotent)."""
        f, self._f = self._f, None
        if f is not None:
            f.close()

    @property
    def closed(self) -> bool:
        """``True`` once :meth:`close` has run."""
        return self._f is None
