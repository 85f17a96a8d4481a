"""Raw frames, sources, conversion and image output.

Public names are re-exported here; submodules hold the implementations.  Sources, sinks and the
compositor load on first use (``import callpipe.media`` does not import PyAV or the compositor's
native module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .frames import VIDEO_CLOCK_HZ, AudioFrame, VideoFrame, i420_size
from .synthetic import (
    AudioStamp,
    Stamp,
    SyntheticAudioSource,
    SyntheticVideoSource,
    monotonic_ms,
    read_audio_stamp,
    read_audio_stamps,
    read_stamp,
)

if TYPE_CHECKING:
    from .compositor import Compositor, compose_frames, grid_layout, pip_layout
    from .sinks import ArraySink, Recorder
    from .sources import (
        ArraySource,
        DeviceNotFoundError,
        DeviceSource,
        FileSource,
        MediaIOError,
        MediaSource,
        available_devices,
    )

_WHERE = {
    "MediaSource": "sources",
    "FileSource": "sources",
    "DeviceSource": "sources",
    "ArraySource": "sources",
    "MediaIOError": "sources",
    "DeviceNotFoundError": "sources",
    "available_devices": "sources",
    "Recorder": "sinks",
    "ArraySink": "sinks",
    "Compositor": "compositor",
    "compose_frames": "compositor",
    "grid_layout": "compositor",
    "pip_layout": "compositor",
}

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
    "AudioStamp",
    "read_audio_stamp",
    "read_audio_stamps",
    "MediaSource",
    "FileSource",
    "DeviceSource",
    "ArraySource",
    "MediaIOError",
    "DeviceNotFoundError",
    "available_devices",
    "Recorder",
    "ArraySink",
    "Compositor",
    "compose_frames",
    "grid_layout",
    "pip_layout",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
