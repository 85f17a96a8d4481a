"""Raw frames, sources, conversion and image output.

Public names are re-exported here; submodules hold the implementations.
"""

from .frames import VIDEO_CLOCK_HZ, AudioFrame, VideoFrame, i420_size
from .synthetic import (
    Stamp,
    SyntheticAudioSource,
    SyntheticVideoSource,
    monotonic_ms,
    read_stamp,
)

__all__ = [
    "VIDEO_CLOCK_HZ",
    "AudioFrame",
    "VideoFrame",
    "i420_size",
    "Stamp",
    "SyntheticAudioSource",
    "SyntheticVideoSource",
    "monotonic_ms",
    "read_stamp",
]
