"""Type stubs of the Cython module ``callpipe.jitter._jitter`` (see _jitter.pyx)."""

from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import CallpipeError

class JitterError(CallpipeError, ValueError): ...

INSERTED: int
DUPLICATE: int
LATE: int
FLUSHED: int
OPERATIONS: dict[int, str]
N_OPERATIONS: int

def default_config() -> dict[str, int | float]: ...
def check_config(config: dict[str, Any]) -> None: ...
def time_stretch(
    pcm: npt.NDArray[np.int16],
    sample_rate: int,
    expand: bool,
    corr_threshold: float = ...,
    silence_rms: float = ...,
) -> tuple[npt.NDArray[np.int16], int, float]: ...
def opus_packet_samples(packet: bytes, sample_rate: int) -> int: ...

OPUS_SAMPLE_RATES: tuple[int, ...]

def opus_decode_all(payloads: list[bytes], sample_rate: int = ..., channels: int = ...) -> int: ...

REPLAY_MIN_LEN: int

def replay_stamp(payload: bytes | bytearray | memoryview, index: int) -> bytes: ...
def replay_index(payload: bytes | bytearray | memoryview) -> int: ...

class AudioJitterCore:
    sample_rate: int
    channels: int
    tick_samples: int
    tick_ms: float
    decoder_errors: list[str]
    def __init__(
        self,
        config: dict[str, Any],
        decoder: Any = ...,
        replay_pcm: npt.NDArray[np.int16] | None = ...,
        replay_frame_ms: float = ...,
    ) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def native_decoder(self) -> bool: ...
    @property
    def decoder_kind(self) -> str: ...
    def insert(
        self,
        seq: int,
        timestamp: int,
        payload: Any,
        now_ms: float,
        id: int = ...,
        duration_samples: int = ...,
        dtx: bool | None = ...,
    ) -> int: ...
    def pull_into(self, now_ms: float, out: npt.NDArray[np.int16]) -> int: ...
    def idle(self) -> bool: ...
    def stats(self) -> dict[str, float]: ...
    def state(self) -> dict[str, Any]: ...
    def take_playouts(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
    def run_schedule(
        self,
        arrival_ms: npt.NDArray[np.float64],
        seq: npt.NDArray[np.int64],
        timestamp: npt.NDArray[np.int64],
        payloads: list[bytes],
        ids: npt.NDArray[np.int64],
        start_ms: float,
        end_ms: float,
        record: npt.NDArray[np.int16] | None = ...,
    ) -> tuple[
        int,
        list[int],
        list[int],
        tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]],
    ]: ...
