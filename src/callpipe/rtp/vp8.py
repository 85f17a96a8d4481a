"""The VP8 RTP payload format (RFC 7741): descriptor, packetizer, depacketizer, frame assembler.

All of it runs in C (``native/src/cp_rtp.c``):

* :class:`Vp8Descriptor` -- the payload descriptor (X/N/S/PID, I/L/T/K, 7- or 15-bit
  PictureID with the M bit, TL0PICIDX, TID/Y, KEYIDX); ``Vp8Descriptor.parse(payload)`` /
  ``bytes(descriptor)``.
* :func:`depacketize` -- one RTP payload -> :class:`Vp8Payload` (descriptor, VP8 data).
* :func:`packetize` -- one whole frame -> RTP payloads (descriptor + data), in one call.
* :class:`Vp8Packetizer` -- a sender: one whole frame (or its SFrame ciphertext) -> complete
  RTP packets in one call: balanced sizes up to the MTU, S=1 on the first, marker on the
  last, sequence numbers, PictureID (wrapping at 2**15), TL0PICIDX, TID/Y/N from the
  encoder's :class:`~callpipe.codecs.vp8.EncodedFrame`, and optional abs-send-time,
  transport-wide sequence number and frame marking extensions.
* :class:`Vp8FrameAssembler` -- a receiver: RTP packets in any order -> complete frames in
  sequence order (:class:`AssembledFrame`), with duplicates, reordering, loss and garbage
  handled and lost frames reported (:class:`FrameLoss`).

Why the descriptor is filled from the encoder's fields and not parsed from the payload: when
the frame is SFrame-encrypted the VP8 frame header (and its keyframe bit) is ciphertext.  The
descriptor (PictureID, TL0PICIDX, TID, N) and the frame marking extension (keyframe = I bit)
stay readable, so a receiver or SFU can still tell frames and layers apart.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from ..errors import NativeModuleError

try:
    from . import _rtp
except ImportError as e:  # pragma: no cover - only without a build
    raise NativeModuleError(
        "callpipe.rtp._rtp is not built (run `make` or `pip install -e .`)", str(e)
    ) from e

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..codecs.vp8 import EncodedFrame

__all__ = [
    "VP8_CLOCK_RATE",
    "Vp8Descriptor",
    "Vp8Payload",
    "depacketize",
    "packetize",
    "Vp8Packetizer",
    "Vp8FrameAssembler",
    "AssembledFrame",
    "FrameLoss",
    "AssemblerStats",
]

#: RTP clock of video, Hz (RFC 7741 section 4.1)
VP8_CLOCK_RATE = 90000

Vp8Descriptor = _rtp.Vp8Descriptor
Vp8Payload = _rtp.Vp8Payload
depacketize = _rtp.depacketize
packetize = _rtp.packetize
Vp8FrameAssembler = _rtp.Vp8FrameAssembler
AssembledFrame = _rtp.AssembledFrame
FrameLoss = _rtp.FrameLoss
AssemblerStats = _rtp.AssemblerStats


class Vp8Packetizer(_rtp.Vp8PacketizerBase):
    """A VP8 RTP sender for one SSRC: whole frames in, RTP packets out.

    :param ssrc: synchronisation source, 0..2**32-1; default: random.
    :param payload_type: RTP payload type, 0..127 (dynamic: 96..127).
    :param mtu: largest RTP packet, bytes (header, extensions, descriptor and data).
    :param sequence_number: first sequence number; default: random (RFC 3550 5.1).
    :param picture_id: first PictureID; default: random.
    :param picture_id_bits: 15 (M bit set), 7, or 0 (no PictureID).
    :param temporal_layers: send TL0PICIDX and TID/Y (when the encoder uses temporal layers).
    :param tl0_pic_idx: TL0PICIDX of the first base-layer frame (0..255, then +1 per base-layer
        frame).
    :param timestamp_offset: added to ``EncodedFrame.pts`` (90 kHz) for the RTP timestamp;
        default: random.
    :param abs_send_time_id: extension id for abs-send-time, or None.
    :param transport_cc_id: extension id for the transport-wide sequence number, or None.
    :param transport_cc_seq: first transport-wide sequence number.
    :param frame_marking_id: extension id for RFC 9626 frame marking (keyframe flag readable
        when the payload is encrypted), or None.
    :param extension_form: ``"auto"``, ``"one-byte"`` or ``"two-byte"``.
    :param csrcs: contributing sources on every packet (up to 15).

    :meth:`packetize` takes raw fields and an RTP timestamp; :meth:`packetize_frame` takes an
    :class:`~callpipe.codecs.vp8.EncodedFrame` (and optionally its encrypted bytes).
    """

    def __init__(
        self,
        ssrc: int | None = None,
        payload_type: int = 96,
        *,
        mtu: int = 1200,
        sequence_number: int | None = None,
        picture_id: int | None = None,
        picture_id_bits: int = 15,
        temporal_layers: bool = False,
        tl0_pic_idx: int = 0,
        timestamp_offset: int | None = None,
        abs_send_time_id: int | None = None,
        transport_cc_id: int | None = None,
        transport_cc_seq: int = 0,
        frame_marking_id: int | None = None,
        extension_form: str = "auto",
        csrcs: tuple[int, ...] = (),
    ) -> None:
        pid_mask = 0x7F if picture_id_bits == 7 else 0x7FFF
        super().__init__(
            secrets.randbits(32) if ssrc is None else ssrc,
            payload_type,
            mtu=mtu,
            sequence_number=secrets.randbits(16) if sequence_number is None else sequence_number,
            picture_id=secrets.randbits(15) & pid_mask if picture_id is None else picture_id,
            picture_id_bits=picture_id_bits,
            temporal_layers=temporal_layers,
            tl0_pic_idx=tl0_pic_idx,
            abs_send_time_id=abs_send_time_id,
            transport_cc_id=transport_cc_id,
            transport_cc_seq=transport_cc_seq,
            frame_marking_id=frame_marking_id,
            extension_form=extension_form,
            csrcs=csrcs,
        )
        self.timestamp_offset: int = (
            secrets.randbits(32) if timestamp_offset is None else timestamp_offset % (1 << 32)
        )

    def packetize_frame(
        self,
        frame: EncodedFrame,
        data: bytes | None = None,
        *,
        send_time_us: int | None = None,
        extensions: Mapping[int, bytes] | None = None,
    ) -> list[bytes]:
        """Packetize an encoder's frame: keyframe, temporal id and droppable come from it.

        :param frame: the :class:`~callpipe.codecs.vp8.EncodedFrame` (``pts`` in 90 kHz).
        :param data: the bytes to send instead of ``frame.data`` (its SFrame ciphertext).
        :param send_time_us: send time in µs for abs-send-time (when its id is set).
        :param extensions: extra header extension elements on every packet (id -> bytes).
        :returns: the RTP packets of the frame.
        """
        return self.packetize(
            frame.data if data is None else data,
            (frame.pts + self.timestamp_offset) % (1 << 32),
            keyframe=frame.keyframe,
            temporal_id=frame.temporal_id,
            non_reference=frame.droppable,
            send_time_us=send_time_us,
            extensions=extensions,
        )
