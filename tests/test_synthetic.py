"""Synthetic sources: deterministic pictures whose stamp (frame number, capture time) reads back."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from callpipe.errors import ConversionError
from callpipe.media import SyntheticAudioSource, SyntheticVideoSource, VideoFrame, read_stamp


@pytest.mark.parametrize("w,h", [(64, 12), (320, 240), (641, 359), (1280, 720)])
def test_stamp_round_trip(w: int, h: int) -> None:
    src = SyntheticVideoSource(w, h)
    for n in (0, 1, 0xFFFF_FFFF, 123_456_789):
        stamp = read_stamp(src.render(n, capture_ms=(n * 7) & 0xFFFF_FFFF))
        assert stamp is not None
        assert stamp.frame_number == n and stamp.capture_ms == (n * 7) & 0xFFFF_FFFF


def test_stamp_survives_noise_but_not_garbage() -> None:
    src = SyntheticVideoSource(320, 240)
    f = src.render(4242, capture_ms=99)
    noisy = f.copy()
    rng = np.random.default_rng(0)
    noisy.y[:] = np.clip(noisy.y.astype(int) + rng.integers(-40, 41, noisy.y.shape), 0, 255)
    assert read_stamp(noisy) == read_stamp(f)
    assert read_stamp(VideoFrame.blank(320, 240)) is None
    flipped = f.copy()
    b = 320 // 32
    flipped.y[:b, :b] = 255 - flipped.y[:b, :b]  # flip one bit of the frame number
    assert read_stamp(flipped) is None  # the check word catches it


def test_frames_move_and_pts_follow_fps() -> None:
    src = SyntheticVideoSource(160, 120, fps=25, frames=3)
    frames = list(src)
    assert [f.pts for f in frames] == [0, 3600, 7200]
    assert not np.array_equal(frames[0].y[40:], frames[1].y[40:])
    assert src.read() is None


def test_async_iteration() -> None:
    async def collect() -> list[int]:
        return [f.pts async for f in SyntheticVideoSource(64, 16, fps=100, frames=4, realtime=True)]

    assert asyncio.run(collect()) == [0, 900, 1800, 2700]


def test_too_small_and_bad_fps() -> None:
    with pytest.raises(ConversionError, match="too small"):
        SyntheticVideoSource(32, 32)
    with pytest.raises(ConversionError, match="fps"):
        SyntheticVideoSource(64, 16, fps=0)


def test_audio_source_frames() -> None:
    src = SyntheticAudioSource(sample_rate=48000, channels=2, frame_ms=10, frames=3)
    frames = list(src)
    assert [f.pts for f in frames] == [0, 480, 960]
    assert frames[0].samples.shape == (480, 2)
    assert np.abs(frames[1].samples).max() > 5000
    with pytest.raises(ConversionError, match="whole number"):
        SyntheticAudioSource(sample_rate=44100, frame_ms=2.5)


def test_audio_stamp_reader_drops_a_word_whose_number_is_implausible() -> None:
    """A damaged word that passes the CRC-8 (1 in 256) carries a random word number; the reader
    drops it because the real words' numbers are close together."""
    import numpy as np

    from callpipe.media.synthetic import SyntheticAudioSource, read_audio_stamps

    frames = list(SyntheticAudioSource(frames=100))
    pcm = np.concatenate([f.samples for f in frames])
    good = [w.word_number for w in read_audio_stamps(pcm, 48000)]
    assert len(good) >= 20 and good == sorted(good)
    # splice in a whole stamped word from far later in the stream (a "misread" with a valid CRC)
    late = list(SyntheticAudioSource(frames=60 * 50))[-50:]
    far = np.concatenate([f.samples for f in late])
    spliced = np.concatenate([pcm[: len(pcm) // 2], far[:48000 // 5], pcm[len(pcm) // 2 :]])
    foreign = [w.word_number for w in read_audio_stamps(far[: 48000 // 5], 48000)]
    assert foreign and min(foreign) > 700  # the splice does carry valid far-away words
    raw = [w.word_number for w in read_audio_stamps(spliced, 48000)]
    assert set(raw) <= set(good) and len(raw) >= len(good) - 2  # they are dropped
