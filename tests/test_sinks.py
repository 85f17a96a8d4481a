"""Sinks: the Recorder's WebM/Matroska files checked by ffprobe, ffmpeg and PyAV (codecs, frame
counts, durations, packets byte-identical to what went in, stamps readable after decoding),
and the ArraySink."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from callpipe.codecs import EncodedFrame, OpusEncoder, Vp8Encoder
from callpipe.errors import ClosedError, ConversionError
from callpipe.media import (
    ArraySink,
    AudioFrame,
    MediaIOError,
    Recorder,
    SyntheticAudioSource,
    SyntheticVideoSource,
    VideoFrame,
    read_audio_stamps,
    read_stamp,
)
from callpipe.media.convert import from_i420

FFPROBE = shutil.which("ffprobe")
FFMPEG = shutil.which("ffmpeg")
needs_tools = pytest.mark.skipif(FFPROBE is None or FFMPEG is None, reason="ffmpeg not installed")
W, H, FPS = 192, 108, 25


@pytest.fixture(scope="module")
def encoded() -> dict[str, object]:
    """2 s of stamped VP8 (50 frames) and Opus (100 packets, 20 ms), encoded by libvpx/libopus."""
    with Vp8Encoder(W, H, 400, fps=FPS, keyframe_interval=20, frame_dropping=False) as enc:
        video = [p for f in SyntheticVideoSource(W, H, FPS, frames=50) for p in enc.encode(f)]
    with OpusEncoder(48000, 1, 32) as oenc:
        audio = [(oenc.encode(f), f.pts) for f in SyntheticAudioSource(frames=100)]
        lookahead = oenc.lookahead
    return {"video": video, "audio": audio, "lookahead": lookahead}


def record(
    path: Path,
    enc: dict[str, object],
    video: bool = True,
    audio: bool = True,
    v_offset: int = 0,
    a_offset: int = 0,
) -> Recorder:
    vpk, apk = enc["video"], enc["audio"]
    assert isinstance(vpk, list) and isinstance(apk, list)
    rec = Recorder(
        path,
        video=(W, H, FPS) if video else None,
        audio=(48000, 1) if audio else None,
        opus_pre_skip=int(enc["lookahead"]),  # type: ignore[call-overload]
    )
    with rec:
        for i in range(100):  # interleaved as a live call would deliver them
            if video and i % 2 == 0:
                f = vpk[i // 2]
                assert rec.write_video(f, pts=f.pts + v_offset)
            if audio:
                pkt, pts = apk[i]
                rec.write_audio(pkt, pts + a_offset)
    return rec


def ffprobe(path: Path) -> dict[str, object]:
    assert FFPROBE is not None
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-count_packets", "-show_entries",
         "stream=codec_name,codec_type,nb_read_packets,width,height,sample_rate,channels,"
         "extradata_size:format=format_name,duration", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    result: dict[str, object] = json.loads(out)
    return result


@needs_tools
def test_recorder_webm_opens_everywhere_with_untouched_packets(
    tmp_path: Path, encoded: dict[str, object]
) -> None:
    path = tmp_path / "call.webm"
    rec = record(path, encoded)
    assert (rec.video_packets, rec.audio_packets, rec.dropped_video) == (50, 100, 0)
    assert rec.duration_s == pytest.approx(2.0, abs=0.001)
    # ffprobe: the codecs, packet counts and duration
    info = ffprobe(path)
    fmt = info["format"]
    assert isinstance(fmt, dict) and "webm" in fmt["format_name"]
    assert float(fmt["duration"]) == pytest.approx(2.0, abs=0.03)
    streams = {s["codec_type"]: s for s in info["streams"]}  # type: ignore[attr-defined]
    assert (
        streams["video"]["codec_name"] == "vp8" and int(streams["video"]["nb_read_packets"]) == 50
    )
    assert (streams["video"]["width"], streams["video"]["height"]) == (W, H)
    assert (
        streams["audio"]["codec_name"] == "opus" and int(streams["audio"]["nb_read_packets"]) == 100
    )
    assert streams["audio"]["extradata_size"] == 19  # OpusHead, channel mapping family 0
    # ffmpeg decodes the whole file without a complaint
    assert FFMPEG is not None
    r = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-f", "null", "-"],
                       capture_output=True, text=True)  # fmt: skip
    assert r.returncode == 0 and r.stderr == ""
    # PyAV: packets are byte-identical to what we passed in, with keyframe flags and pts
    vpk = encoded["video"]
    assert isinstance(vpk, list)
    with av.open(str(path)) as c:
        packets = [p for p in c.demux(c.streams.video[0]) if p.size]
        head = bytes(c.streams.audio[0].codec_context.extradata or b"")
    assert [bytes(p) for p in packets] == [f.data for f in vpk]
    assert [p.is_keyframe for p in packets] == [f.keyframe for f in vpk]
    assert sum(f.keyframe for f in vpk) == 3  # frames 0, 20, 40
    assert [int(p.pts * p.time_base * 1000) for p in packets] == [40 * i for i in range(50)]
    assert head[:8] == b"OpusHead" and head[9] == 1  # mono
    assert int.from_bytes(head[10:12], "little") == encoded["lookahead"]  # pre-skip
    # decoded: 50 pictures with their stamps, and the tone with its stamps after the pre-skip
    with av.open(str(path)) as c:
        pictures = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(pictures) == 50
    from callpipe.media.convert import to_i420

    numbers = [read_stamp(to_i420(p, "rgb24")) for p in pictures]
    assert [s.frame_number if s else None for s in numbers] == list(range(50))
    with av.open(str(path)) as c:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    assert len(pcm) == 100 * 960 - int(encoded["lookahead"])  # type: ignore[call-overload]
    words = read_audio_stamps(pcm, 48000)
    # FFmpeg's own Opus decoder (not libopus) differs slightly from libopus on SILK/hybrid
    # frames, and the stamps carry the capture time, so a word now and then fails its CRC and is
    # dropped (never misread): require nearly all of the 24 words, in order.
    numbers = [w.word_number for w in words]
    assert numbers == sorted(set(numbers)) and set(numbers) <= set(range(25))
    assert len(set(numbers) & set(range(24))) >= 21
    assert words[0].word_number == 0 or words[0].word_number == 1
    if words[0].word_number == 0:
        assert abs(words[0].pts) <= 48 * 6  # pre-skip removed: word 0 starts at the beginning


@needs_tools
def test_recorder_rebases_timestamps_and_single_streams(
    tmp_path: Path, encoded: dict[str, object]
) -> None:
    mkv = tmp_path / "v.mkv"
    record(mkv, encoded, audio=False, v_offset=123_456)
    info = ffprobe(mkv)
    assert "matroska" in info["format"]["format_name"]  # type: ignore[index]
    assert [s["codec_name"] for s in info["streams"]] == ["vp8"]  # type: ignore[attr-defined]
    with av.open(str(mkv)) as c:
        first = next(p for p in c.demux(video=0) if p.size)
        assert first.pts == 0  # rebased to the start of the file
    mka = tmp_path / "a.mka"
    record(mka, encoded, video=False, a_offset=48_000 * 7)
    info = ffprobe(mka)
    assert [s["codec_name"] for s in info["streams"]] == ["opus"]  # type: ignore[attr-defined]
    assert float(info["format"]["duration"]) == pytest.approx(2.0, abs=0.03)  # type: ignore[index]


def test_recorder_waits_for_a_keyframe_and_checks_order(
    tmp_path: Path, encoded: dict[str, object]
) -> None:
    vpk = encoded["video"]
    assert isinstance(vpk, list)
    with Recorder(tmp_path / "k.webm", video=(W, H, FPS)) as rec:
        assert not rec.write_video(vpk[1])  # a delta frame first: skipped
        assert rec.dropped_video == 1
        assert rec.write_video(vpk[0].data, pts=90_000)  # bytes: keyframe read from the tag
        assert rec.write_video(vpk[1].data)  # pts: one frame period later
        with pytest.raises(MediaIOError, match="must increase"):
            rec.write_video(vpk[2], pts=90_000)
        with pytest.raises(MediaIOError, match="without audio"):
            rec.write_audio(b"\xf8")
        with pytest.raises(MediaIOError, match="non-empty"):
            rec.write_video(b"")
        assert rec.write_video(vpk[2], pts=100_000)  # still usable
    with pytest.raises(ClosedError):
        rec.write_video(vpk[3])
    rec.close()  # idempotent
    with av.open(str(tmp_path / "k.webm")) as c:
        pts = [int(p.pts) for p in c.demux(video=0) if p.size]
    assert pts == [0, 40, 111]  # ms: rebased, default period, then as given


def test_recorder_audio_rates_and_bad_packets(tmp_path: Path) -> None:
    with OpusEncoder(16000, 2, 32) as enc:
        frames = list(SyntheticAudioSource(16000, 2, 20, frames=10))
        packets = [enc.encode(f) for f in frames]
        pre_skip = enc.lookahead * 3
    path = tmp_path / "wb.webm"
    with Recorder(path, audio=(16000, 2), opus_pre_skip=pre_skip) as rec:
        for p in packets:
            rec.write_audio(p)  # pts follow from the packet durations
        with pytest.raises(MediaIOError, match="Opus packet"):
            rec.write_audio(b"\xfb")  # code 3 without a frame count byte
        with pytest.raises(MediaIOError, match="must increase"):
            rec.write_audio(packets[0], pts=0)
    assert rec.duration_s == pytest.approx(0.2)
    with av.open(str(path)) as c:
        s = c.streams.audio[0]
        assert (s.codec_context.channels, s.codec_context.sample_rate) == (2, 48000)
        assert [int(p.pts) for p in c.demux(audio=0) if p.size] == [20 * i for i in range(10)]


def test_recorder_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(MediaIOError, match="video, audio or both"):
        Recorder(tmp_path / "x.webm")
    with pytest.raises(MediaIOError, match="cannot tell the container"):
        Recorder(tmp_path / "x.avi", video=(W, H, FPS))
    with pytest.raises(MediaIOError, match="cannot create|cannot start"):
        Recorder(tmp_path / "no" / "such" / "dir.webm", video=(W, H, FPS))
    with pytest.raises(MediaIOError, match="Opus input"):
        Recorder(tmp_path / "x.webm", audio=(44100, 2))
    with pytest.raises(MediaIOError, match="video size"):
        Recorder(tmp_path / "x.webm", video=(0, H, FPS))
    with pytest.raises(MediaIOError, match="fps"):
        Recorder(tmp_path / "x.webm", video=(W, H, 0))


def test_recorder_accepts_encoded_frames_built_by_hand(tmp_path: Path) -> None:
    with Vp8Encoder(64, 64, 200) as enc:
        real = enc.encode(SyntheticVideoSource(64, 64).render(0))[0]
    frame = EncodedFrame(real.data, True, 0)
    with Recorder(tmp_path / "one.mkv", video=(64, 64, 30)) as rec:
        assert rec.write_video(frame)
    with av.open(str(tmp_path / "one.mkv")) as c:
        assert [bytes(p) for p in c.demux(video=0) if p.size] == [real.data]


# -- ArraySink ---------------------------------------------------------------------------------
def test_array_sink_collects_pictures_and_audio() -> None:
    src = SyntheticVideoSource(64, 36)
    frames = [src.render(i) for i in range(3)]
    sink = ArraySink("bgra", maxsize=2)
    for f in frames:
        sink.write(f)
    assert sink.dropped == 1 and sink.video_pts == [frames[1].pts, frames[2].pts]
    assert np.array_equal(sink.video[1], from_i420(frames[2], "bgra"))
    audio = list(SyntheticAudioSource(frames=3, channels=2))
    for a in audio:
        sink.write(a)
    assert sink.sample_rate == 48000 and sink.audio_pts == [960, 1920]
    assert sink.audio_array().shape == (1920, 2)
    taken = sink.take_video()
    assert len(taken) == 2 and sink.video == []
    assert len(sink) == 2
    with pytest.raises(ConversionError, match="Hz"):
        sink.write(AudioFrame(np.zeros((160, 1), np.int16), 8000))
    with pytest.raises(ConversionError, match="takes VideoFrame"):
        sink.write(np.zeros(4))  # type: ignore[arg-type]
    sink.close()
    with pytest.raises(ClosedError):
        sink.write(frames[0])
    assert len(sink.take_audio()) == 2  # what is stored stays readable


def test_array_sink_i420_and_arguments() -> None:
    f = SyntheticVideoSource(65, 33).render(1)
    sink = ArraySink("i420")
    sink.write(f)
    back = VideoFrame.from_i420(sink.video[0], 65, 33)
    assert back == f
    assert sink.audio_array().shape == (0, 1)
    with pytest.raises(ConversionError):
        ArraySink("yuv444p")  # type: ignore[arg-type]
    with pytest.raises(ConversionError):
        ArraySink(maxsize=0)
