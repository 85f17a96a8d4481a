"""Type stubs of the Cython module ``callpipe.rtp._rtcp`` (see _rtcp.pyx)."""

from typing import Any, TypeVar

from typing_extensions import Buffer

from ..errors import TransportError

KIND_SR: int
KIND_RR: int
KIND_SDES: int
KIND_BYE: int
KIND_APP: int
KIND_NACK: int
KIND_PLI: int
KIND_FIR: int
KIND_REMB: int
KIND_FEEDBACK: int
KIND_OTHER: int
MAX_COUNT: int
MAX_PACKET: int
MAX_REMB_SSRCS: int
ERR_EMPTY: int
ERR_TRUNCATED: int
ERR_VERSION: int
ERR_TYPE: int
ERR_PADDING: int
ERR_FIRST: int
ERR_LENGTH: int
ERR_SDES: int
ERR_BYE: int
ERR_FEEDBACK: int
ERR_RESERVED: int
ERR_TOO_MANY: int

class RtcpParseError(TransportError):
    code: int
    offset: int
    index: int
    def __init__(self, message: str, code: int, offset: int, index: int) -> None: ...

_Block = tuple[int, int, int, int, int, int, int]
_T = TypeVar("_T")

def parse(data: Buffer, reduced_size: bool = ...) -> tuple[list[tuple[Any, ...]], bytes]: ...
def write_sr(
    ssrc: int, ntp: int, rtp_ts: int, packets: int, octets: int, blocks: list[_Block], ext: bytes
) -> bytes: ...
def write_rr(ssrc: int, blocks: list[_Block], ext: bytes) -> bytes: ...
def write_sdes(items: list[tuple[int, int, int, bytes]]) -> bytes: ...
def write_bye(ssrcs: list[int], reason: bytes | None) -> bytes: ...
def write_app(subtype: int, ssrc: int, name: bytes, data: bytes) -> bytes: ...
def write_nack(sender: int, media: int, items: list[tuple[int, int]]) -> bytes: ...
def write_pli(sender: int, media: int) -> bytes: ...
def write_fir(sender: int, media: int, entries: list[tuple[int, int]]) -> bytes: ...
def write_remb(
    sender: int, media: int, exponent: int, mantissa: int, ssrcs: list[int]
) -> bytes: ...
def write_raw(type: int, count: int, body: bytes) -> bytes: ...
def nack_pack(seqs: list[int]) -> list[tuple[int, int]]: ...
def nack_unpack(items: list[tuple[int, int]]) -> list[int]: ...
def build(cls: type[_T], names: tuple[str, ...], values: tuple[Any, ...]) -> _T: ...
