"""Type stubs of the Cython module ``callpipe.rtp._rtp`` (see _rtp.pyx)."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from typing_extensions import Buffer

ONE_BYTE_PROFILE: int
TWO_BYTE_PROFILE: int
FIXED_HEADER_SIZE: int
MAX_CSRC: int
MAX_VP8_DESCRIPTOR_SIZE: int
ERROR_NAMES: dict[int, str]

class HeaderExtension(NamedTuple):
    id: int
    data: bytes

class AudioLevel(NamedTuple):
    voice: bool
    level: int

class FrameMarking(NamedTuple):
    start: bool
    end: bool
    independent: bool
    discardable: bool
    base_layer_sync: bool
    temporal_id: int
    layer_id: int | None = None
    tl0_pic_idx: int | None = None

class Vp8Payload(NamedTuple):
    descriptor: Vp8Descriptor
    data: bytes

class FrameLoss(NamedTuple):
    reason: str
    first_seq: int
    last_seq: int
    packets_received: int
    timestamps: int
    first_timestamp: int | None

class AssemblerStats(NamedTuple):
    packets: int
    bytes: int
    duplicates: int
    late: int
    invalid: int
    foreign: int
    frames: int
    keyframes: int
    losses: int
    packets_dropped: int
    padding: int
    held: int

_Extensions = Iterable[HeaderExtension | tuple[int, Buffer]] | Mapping[int, Buffer] | None

def check(data: Buffer) -> int: ...
def check_vp8(payload: Buffer) -> int: ...
def decode_extensions(profile: int, block: Buffer) -> tuple[HeaderExtension, ...]: ...
def encode_extensions(extensions: _Extensions, form: str = ...) -> tuple[int, bytes]: ...
def abs_send_time_from_us(time_us: int) -> int: ...
def abs_send_time_to_us(value: int) -> int: ...
def encode_abs_send_time(time_us: int) -> bytes: ...
def decode_abs_send_time(data: Buffer) -> int: ...
def encode_transport_cc(seq: int) -> bytes: ...
def decode_transport_cc(data: Buffer) -> int: ...
def encode_audio_level(voice: bool, level: int) -> bytes: ...
def decode_audio_level(data: Buffer) -> AudioLevel: ...
def encode_frame_marking(marking: FrameMarking) -> bytes: ...
def decode_frame_marking(data: Buffer) -> FrameMarking: ...

class RtpPacket:
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
    def __init__(
        self,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: Buffer = ...,
        *,
        marker: bool = ...,
        csrcs: Iterable[int] = ...,
        extensions: _Extensions = ...,
        extension_form: str = ...,
        extension_profile: int | None = ...,
        extension_data: Buffer | None = ...,
        padding: int | Buffer = ...,
    ) -> None: ...
    @staticmethod
    def parse(data: Buffer) -> RtpPacket: ...
    @property
    def extensions(self) -> tuple[HeaderExtension, ...]: ...
    @property
    def extension_form(self) -> str | None: ...
    def extension(self, id: int) -> bytes | None: ...
    @property
    def padding_size(self) -> int: ...
    @property
    def header_size(self) -> int: ...
    def __len__(self) -> int: ...
    def serialize(self) -> bytes: ...
    def __bytes__(self) -> bytes: ...
    def replace(self, **changes: Any) -> RtpPacket: ...
    def __hash__(self) -> int: ...

def parse_many(packets: Iterable[Buffer], skip_invalid: bool = ...) -> list[RtpPacket]: ...
def seq_diff(a: int, b: int) -> int: ...
def ts_diff(a: int, b: int) -> int: ...

class Unwrapper:
    bits: int
    def __init__(self, bits: int = ...) -> None: ...
    def unwrap(self, value: int) -> int: ...
    def peek(self, value: int) -> int: ...
    @property
    def last(self) -> int | None: ...
    def reset(self) -> None: ...

class Vp8Descriptor:
    def __init__(
        self,
        *,
        start: bool = ...,
        partition_id: int = ...,
        non_reference: bool = ...,
        picture_id: int | None = ...,
        long_picture_id: bool = ...,
        tl0_pic_idx: int | None = ...,
        temporal_id: int | None = ...,
        layer_sync: bool = ...,
        key_idx: int | None = ...,
        extended: bool = ...,
    ) -> None: ...
    @staticmethod
    def parse(payload: Buffer) -> Vp8Descriptor: ...
    @property
    def start(self) -> bool: ...
    @property
    def partition_id(self) -> int: ...
    @property
    def non_reference(self) -> bool: ...
    @property
    def picture_id(self) -> int | None: ...
    @property
    def long_picture_id(self) -> bool: ...
    @property
    def tl0_pic_idx(self) -> int | None: ...
    @property
    def temporal_id(self) -> int | None: ...
    @property
    def layer_sync(self) -> bool: ...
    @property
    def key_idx(self) -> int | None: ...
    @property
    def extended(self) -> bool: ...
    @property
    def size(self) -> int: ...
    def serialize(self) -> bytes: ...
    def __bytes__(self) -> bytes: ...
    def replace(self, **changes: Any) -> Vp8Descriptor: ...
    def __hash__(self) -> int: ...

def depacketize(payload: Buffer) -> Vp8Payload: ...
def packetize(frame: Buffer, mtu: int, descriptor: Vp8Descriptor | None = ...) -> list[bytes]: ...

class Vp8PacketizerBase:
    ssrc: int
    payload_type: int
    mtu: int
    picture_id_bits: int
    temporal_layers: bool
    csrcs: tuple[int, ...]
    abs_send_time_id: int | None
    transport_cc_id: int | None
    frame_marking_id: int | None
    def __init__(
        self,
        ssrc: int,
        payload_type: int = ...,
        *,
        mtu: int = ...,
        sequence_number: int = ...,
        picture_id: int = ...,
        picture_id_bits: int = ...,
        temporal_layers: bool = ...,
        tl0_pic_idx: int = ...,
        abs_send_time_id: int | None = ...,
        transport_cc_id: int | None = ...,
        transport_cc_seq: int = ...,
        frame_marking_id: int | None = ...,
        extension_form: str = ...,
        csrcs: Sequence[int] = ...,
    ) -> None: ...
    @property
    def sequence_number(self) -> int: ...
    @property
    def picture_id(self) -> int: ...
    @property
    def tl0_pic_idx(self) -> int: ...
    @property
    def transport_cc_seq(self) -> int: ...
    def packetize(
        self,
        frame: Buffer,
        timestamp: int,
        *,
        keyframe: bool = ...,
        temporal_id: int = ...,
        layer_sync: bool | None = ...,
        non_reference: bool = ...,
        key_idx: int | None = ...,
        send_time_us: int | None = ...,
        extensions: _Extensions = ...,
    ) -> list[bytes]: ...

class AssembledFrame:
    data: bytes
    timestamp: int
    extended_timestamp: int
    first_seq: int
    last_seq: int
    packets: int
    ssrc: int
    payload_type: int
    keyframe: bool | None
    continuous: bool
    marker: bool
    descriptor: Vp8Descriptor
    frame_marking: FrameMarking | None
    arrival_ms: float | None
    @property
    def picture_id(self) -> int | None: ...
    @property
    def tl0_pic_idx(self) -> int | None: ...
    @property
    def temporal_id(self) -> int | None: ...
    def __len__(self) -> int: ...

class Vp8FrameAssembler:
    frame_marking_id: int | None
    encrypted: bool
    def __init__(
        self,
        *,
        capacity: int = ...,
        ssrc: int | None = ...,
        frame_marking_id: int | None = ...,
        encrypted: bool = ...,
        max_wait_frames: int = ...,
        max_wait_ms: float | None = ...,
    ) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Vp8FrameAssembler: ...
    def __exit__(self, *exc: object) -> None: ...
    def push(self, packet: Buffer, arrival_ms: float | None = ...) -> list[AssembledFrame]: ...
    def push_many(
        self, packets: Iterable[Buffer], arrival_ms: float | None = ...
    ) -> list[AssembledFrame]: ...
    def advance(self, now_ms: float) -> list[AssembledFrame]: ...
    def skip(self, all: bool = ...) -> list[AssembledFrame]: ...
    def flush(self) -> list[AssembledFrame]: ...
    def take_losses(self) -> list[FrameLoss]: ...
    def reset(self, unlock_ssrc: bool = ...) -> None: ...
    @property
    def stats(self) -> AssemblerStats: ...
    @property
    def held(self) -> int: ...
