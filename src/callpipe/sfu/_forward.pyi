"""Type stubs of the Cython module ``callpipe.sfu._forward`` (see _forward.pyx)."""

from collections.abc import Iterable
from typing import Any, NamedTuple

from typing_extensions import Buffer

AUDIO: int
VIDEO: int
RTX: int
EV_RTCP: int
EV_REGISTERED: int
EV_KEYFRAME_WAIT: int
TOKEN_LEN: int
HELLO_LEN: int
REPLY_LEN: int
SLOT_BYTES: int
CACHE_BYTES: int
SEQ_WINDOW: int
MAX_TID: int
MAX_BATCH: int

class Event(NamedTuple):
    type: int
    participant: int
    ssrc: int
    data: bytes

class PumpResult(NamedTuple):
    datagrams: int
    sent: int
    batches: int
    error: int
    drained: bool

class LoadSendResult(NamedTuple):
    sent: int
    errors: int
    seconds: float
    cpu_s: float
    late_max_s: float
    late_mean_s: float
    per_sender: list[tuple[int, int, int]]

class LoadRecvResult(NamedTuple):
    rtp: int
    rtp_bytes: int
    rtcp: int
    other: int
    first_s: float
    last_s: float
    cpu_s: float
    received: list[list[int]]
    span: list[list[int]]

class LinkState(NamedTuple):
    max_tid: int | None
    current_tid: int | None
    enabled: bool
    waiting: bool
    forwarded: int
    dropped: int

class ForwardTable:
    def __init__(
        self,
        *,
        max_participants: int = ...,
        max_sources: int = ...,
        cache_packets: int = ...,
        batch: int = ...,
        audio_level_id: int = ...,
        frame_marking_id: int = ...,
        rate_packets: float = ...,
        burst_packets: float = ...,
        rate_bytes: float = ...,
        burst_bytes: float = ...,
    ) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> ForwardTable: ...
    def __exit__(self, *exc: object) -> None: ...
    def add_participant(self, room: int, token: bytes) -> int: ...
    def remove_participant(self, slot: int) -> None: ...
    def set_address(self, slot: int, addr: tuple[str, int] | None) -> None: ...
    def address(self, slot: int) -> tuple[str, int] | None: ...
    def add_source(
        self, slot: int, ssrc: int, kind: int, clock_rate: int, layer: int = ...
    ) -> None: ...
    def source_owner(self, ssrc: int) -> int | None: ...
    def set_max_tid(self, receiver: int, ssrc: int, max_tid: int | None) -> None: ...
    def set_enabled(self, receiver: int, ssrc: int, enabled: bool) -> None: ...
    def link_state(self, receiver: int, ssrc: int) -> LinkState: ...
    def pump(self, fd: int, max_batches: int = ...) -> PumpResult: ...
    def route(
        self, data: Buffer, addr: tuple[str, int], now_us: int
    ) -> list[tuple[bytes, tuple[str, int]]]: ...
    def events(self) -> list[Event]: ...
    def upstream_seq(self, receiver: int, ssrc: int, out_seq: int) -> int | None: ...
    def resend(self, receiver: int, ssrc: int, out_seq: int) -> bytes | None: ...
    def counters(self) -> dict[str, int]: ...
    def participant_stats(self, slot: int) -> dict[str, int]: ...
    def source_stats(self, ssrc: int) -> dict[str, Any]: ...
    def source_report(self, ssrc: int) -> tuple[int, int]: ...
    def levels_reset(self) -> None: ...
    def last_errno(self) -> int: ...

def blast(
    fd: int,
    addr: tuple[str, int] | list[tuple[str, int]],
    packet: Buffer,
    rate_pps: float,
    seconds: float,
    count: int = ...,
    batch: int = ...,
) -> tuple[int, int, float]: ...
def sink(
    fds: Iterable[int], seconds: float, idle_s: float = ...
) -> tuple[int, int, float, float]: ...
def load_send(
    senders: Iterable[tuple[int, tuple[int, int], tuple[int, int], float, int]],
    addr: tuple[str, int],
    packet_bytes: Buffer,
    packets: Iterable[tuple[float, int, int, int, int]],
    loop_s: float,
    ts_per_loop: tuple[int, int],
    seconds: float,
) -> LoadSendResult: ...
def load_recv(
    fds: Iterable[int], ssrcs: Iterable[int], seconds: float, idle_s: float = ...
) -> LoadRecvResult: ...
