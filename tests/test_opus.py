"""callpipe.codecs.opus (libopus through cffi) and callpipe.codecs.ogg (Ogg Opus files).

Real libopus only.  Signals are made here: tones, chirps and a speech-like train of voiced
syllables.  Interop with FFmpeg and opus-tools lives in test_opus_interop.py.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callpipe.codecs.ogg import (
    OggOpusPacket,
    OggOpusReader,
    OggOpusWriter,
    ogg_crc32,
    opus_packet_samples,
)
from callpipe.codecs.opus import OpusDecoder, OpusEncoder, libopus_version
from callpipe.errors import ClosedError, CodecError
from callpipe.media.frames import AudioFrame

RATE = 48000


# -- signals and measures ------------------------------------------------------------------
def chirp(n: int, f0: float = 200.0, f1: float = 3000.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(n) / RATE
    k = (f1 - f0) / (n / RATE)
    return (amp * 32767 * np.sin(2 * np.pi * (f0 * t + 0.5 * k * t * t))).astype(np.int16)


def tone(n: int, freq: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(n) / RATE
    return (amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def syllables(n: int = RATE) -> np.ndarray:
    """Voiced bursts of 140 ms every 200 ms, each with its own pitch glide (speech-like)."""
    rng = np.random.default_rng(3)
    x = np.zeros(n)
    for s, start in enumerate(range(2400, n - 9600, 9600)):
        m = 6720
        tt = np.arange(m) / RATE
        f0 = (110 + 25 * s) * (1 + 0.3 * tt / 0.14)
        ph = 2 * np.pi * np.cumsum(f0) / RATE
        v = sum((0.6 / k) * np.sin(k * ph) for k in range(1, 16))
        x[start : start + m] += v * np.sin(np.pi * np.arange(m) / m) ** 0.5
    x += 0.002 * rng.standard_normal(n)
    return (x / np.abs(x).max() * 14000).astype(np.int16)


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equally long signals."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def best_lag(x: np.ndarray, y: np.ndarray, lags: range) -> tuple[int, float]:
    """Lag (y behind x, samples) of the highest normalised cross-correlation, and that value.

    All lags at once through the FFT; each lag is normalised over its overlapping part.
    """
    n = min(len(x), len(y))
    a = x[:n].astype(np.float64)
    b = y[:n].astype(np.float64)
    size = 1 << (2 * n - 1).bit_length()
    r = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)
    ea = np.concatenate([[0.0], np.cumsum(a * a)])  # energy of a[:m] is ea[m]
    eb = np.concatenate([[0.0], np.cumsum((b * b)[::-1])])  # energy of b[n-m:] is eb[m]
    best = (0, -2.0)
    for lag in lags:
        c = r[lag] / (np.sqrt(ea[n - lag] * eb[n - lag]) + 1e-12)
        if c > best[1]:
            best = (lag, float(c))
    return best


def frames_of(pcm: np.ndarray, frame: int, rate: int = RATE) -> list[AudioFrame]:
    pcm2 = pcm.reshape(len(pcm), -1)
    return [
        AudioFrame(np.ascontiguousarray(pcm2[i : i + frame]), rate, pts=i)
        for i in range(0, len(pcm2) - frame + 1, frame)
    ]


# -- round trips ---------------------------------------------------------------------------
def test_libopus_version_is_the_loaded_library() -> None:
    v = libopus_version()
    assert v.startswith("libopus ")
    assert v.split()[1][0].isdigit()


@pytest.mark.parametrize("frame_ms", [20, 10])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip_correlates_with_input(frame_ms: int, channels: int) -> None:
    n = RATE
    if channels == 1:
        pcm = chirp(n)[:, None]
    else:  # different content per channel: a swap or a downmix would show
        pcm = np.stack([chirp(n), tone(n, 660.0)], axis=1)
    fs = RATE * frame_ms // 1000
    with OpusEncoder(channels=channels, bitrate_kbps=32 * channels, application="audio") as enc:
        delay = enc.lookahead
        packets = [enc.encode(f) for f in frames_of(pcm, fs)]
    assert all(0 < len(p) <= 4000 for p in packets)
    with OpusDecoder(channels=channels) as dec:
        out = [dec.decode(p) for p in packets]
        assert dec.pts == n
    assert [f.pts for f in out] == list(range(0, n, fs))
    assert all(f.samples.shape == (fs, channels) and f.sample_rate == RATE for f in out)
    y = np.concatenate([f.samples for f in out])
    for c in range(channels):
        lag, corr = best_lag(pcm[:, c], y[:, c], range(0, 2 * delay))
        assert abs(lag - delay) <= 2, (lag, delay)  # the codec delay is the lookahead
        assert corr > 0.9, corr
    if channels == 2:  # left is not right
        assert ncc(pcm[: n - delay, 0], y[delay:, 1]) < 0.3


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_other_rates_and_all_frame_durations(rate: int) -> None:
    t = np.arange(rate) / rate
    pcm = (9000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)[:, None]
    with OpusEncoder(sample_rate=rate) as enc, OpusDecoder(sample_rate=rate) as dec:
        for ms in (2.5, 5, 10, 20, 40, 60):
            fs = int(rate * ms / 1000)
            frame = AudioFrame(np.ascontiguousarray(pcm[:fs]), rate)
            pkt = enc.encode(frame)
            assert opus_packet_samples(pkt) == int(48000 * ms / 1000)
            out = dec.decode(pkt)
            assert out.samples.shape == (fs, 1) and out.sample_rate == rate
            assert dec.final_range == enc.final_range


def test_decoder_output_is_bit_exact_with_the_encoder_state() -> None:
    """libopus' final range check: the decoder's range coder ends where the encoder's did."""
    pcm = syllables()[:, None]
    with OpusEncoder(complexity=10) as enc, OpusDecoder() as dec:
        for f in frames_of(pcm, 960):
            pkt = enc.encode(f)
            dec.decode(pkt)
            assert dec.final_range == enc.final_range


def test_packet_duration_change_and_mono_packets_to_stereo_decoder() -> None:
    with OpusEncoder(application="lowdelay") as enc, OpusDecoder(channels=2) as dec:
        pcm = chirp(2880)[:, None]
        p20 = enc.encode(AudioFrame(np.ascontiguousarray(pcm[:960])))
        p60 = enc.encode(AudioFrame(np.ascontiguousarray(pcm[:2880])))  # code-3 packet
        assert p60[0] & 3 == 3
        assert dec.decode(p20).samples.shape == (960, 2)
        f = dec.decode(p60)  # longer than the last frame: the decoder grows its buffer
        assert f.samples.shape == (2880, 2) and f.pts == 960
        assert np.array_equal(f.samples[:, 0], f.samples[:, 1])  # mono upmix
        assert dec.last_frame_ms == 60
        assert dec.decode(None).samples.shape == (2880, 2)  # PLC follows the last duration


def test_non_contiguous_frames_are_accepted() -> None:
    stereo = np.stack([chirp(960), chirp(960)], axis=1)
    view = stereo[:, :1]  # a strided view of one column
    assert not view.flags.c_contiguous
    with OpusEncoder() as enc1, OpusEncoder() as enc2, OpusEncoder() as enc3:
        expected = enc2.encode(AudioFrame(view.copy()))
        assert enc1.encode(AudioFrame(view)) == expected
        # read-only PCM straight from bytes works too
        assert enc3.encode(AudioFrame.from_pcm(view.tobytes())) == expected
    with OpusDecoder() as dec:  # and packets in any bytes-like container
        for kind in (bytes, bytearray, memoryview):
            assert dec.decode(kind(expected)).samples.shape == (960, 1)
        with pytest.raises(CodecError, match="unusable"):
            dec.decode(memoryview(expected * 2)[::2])  # not contiguous


# -- encoder controls ----------------------------------------------------------------------
def test_encoder_controls_read_back_from_libopus() -> None:
    with OpusEncoder(
        bitrate_kbps=24, complexity=5, fec=True, expected_loss_pct=15, dtx=True, vbr="on"
    ) as enc:
        assert (enc.bitrate_kbps, enc.complexity, enc.fec, enc.expected_loss_pct) == (
            24.0, 5, True, 15,
        )
        assert enc.dtx is True and enc.vbr == "on"
        enc.bitrate_kbps = 64
        enc.complexity = 0
        enc.fec = False
        enc.expected_loss_pct = 0
        enc.dtx = False
        enc.vbr = "off"
        assert (enc.bitrate_kbps, enc.complexity, enc.fec, enc.expected_loss_pct) == (
            64.0, 0, False, 0,
        )
        assert enc.dtx is False and enc.vbr == "off"
        enc.vbr = "constrained"
        assert enc.vbr == "constrained"
        assert enc.lookahead > 0


def test_bitrate_changes_in_place() -> None:
    pcm = syllables()[:, None]
    frames = frames_of(pcm, 960)
    with OpusEncoder(bitrate_kbps=12, vbr="off") as enc:
        low = sum(len(enc.encode(f)) for f in frames[:25])
        enc.bitrate_kbps = 96
        high = sum(len(enc.encode(f)) for f in frames[25:])
    # CBR: bytes per 20 ms packet = kbps * 20 / 8
    assert low == pytest.approx(25 * 12 * 20 / 8, rel=0.05)
    assert high == pytest.approx(25 * 96 * 20 / 8, rel=0.05)


def test_dtx_shrinks_silence_packets() -> None:
    silence = AudioFrame(np.zeros((960, 1), np.int16))
    with OpusEncoder(dtx=True) as enc, OpusDecoder() as dec:
        sizes = [len(enc.encode(silence)) for _ in range(30)]
        assert min(sizes[10:]) <= 2  # in DTX: TOC-only packets that need not be sent
        # and the decoder takes them
        assert dec.decode(enc.encode(silence)).samples.shape == (960, 1)


# -- loss: PLC and FEC -----------------------------------------------------------------------
def test_fec_recovers_a_lost_frame_better_than_plc() -> None:
    pcm = syllables()
    with OpusEncoder(fec=True, expected_loss_pct=20) as enc:
        delay = enc.lookahead
        packets = [enc.encode(f) for f in frames_of(pcm[:, None], 960)]
    original = np.concatenate([np.zeros(delay), pcm.astype(np.float64)])  # as output lines up

    def decode_with_loss(lost: int, mode: str) -> np.ndarray:
        with OpusDecoder() as dec:
            out = []
            for k, p in enumerate(packets):
                if k != lost:
                    out.append(dec.decode(p))
                elif mode == "fec":
                    out.append(dec.decode(packets[k + 1], fec=True))
                else:
                    out.append(dec.decode(None))
                assert out[-1].pts == 960 * k
            return np.concatenate([f.samples[:, 0] for f in out]).astype(np.float64)

    fec_total = plc_total = 0.0
    for lost in (3, 9, 13, 19, 23, 29):  # syllable onsets and ends: PLC cannot guess these
        seg = slice(lost * 960, (lost + 1) * 960)
        ref = original[seg]
        fec = decode_with_loss(lost, "fec")[seg]
        plc = decode_with_loss(lost, "plc")[seg]
        fec_err = float(np.sum((fec - ref) ** 2) / np.sum(ref**2))
        plc_err = float(np.sum((plc - ref) ** 2) / np.sum(ref**2))
        print(f"lost frame {lost}: relative error FEC {fec_err:.3f}, PLC {plc_err:.3f}")
        assert fec_err < plc_err
        fec_total += fec_err
        plc_total += plc_err
    assert fec_total < 0.7 * plc_total


def test_plc_durations_and_pts() -> None:
    with OpusEncoder() as enc, OpusDecoder() as dec:
        f = dec.decode(None)  # before any packet: 20 ms
        assert f.samples.shape == (960, 1) and f.pts == 0
        assert not f.samples.any()
        dec.decode(enc.encode(AudioFrame(chirp(480)[:, None].copy())))
        assert dec.decode(None).samples.shape == (480, 1)  # the last packet's duration
        assert dec.decode(None, duration_ms=2.5).samples.shape == (120, 1)
        assert dec.decode(None, duration_ms=120).samples.shape == (5760, 1)
        assert dec.pts == 960 + 480 + 480 + 120 + 5760
        dec.reset()
        assert dec.pts == 0


# -- bad input ---------------------------------------------------------------------------------
def _good_packet() -> bytes:
    with OpusEncoder() as enc:
        return enc.encode(AudioFrame(chirp(960)[:, None].copy()))


@pytest.mark.parametrize(
    ("packet", "why"),
    [
        (b"\x03", "code 3 without its frame count byte"),
        (b"\x03\x00", "code 3 with zero frames"),
        (b"\x01\x00", "code 1 with an odd payload"),
        (b"\x02", "code 2 without its frame length"),
        (b"\x02\xff\xff", "code 2 with a frame longer than the packet"),
        (b"\x0b\x3f" + b"\x00" * 10, "63 frames: more than 120 ms"),
    ],
)
def test_invalid_packets_raise_codec_error_and_decoder_survives(packet: bytes, why: str) -> None:
    good = _good_packet()
    with OpusDecoder() as dec:
        with pytest.raises(CodecError) as ei:
            dec.decode(packet)
        assert ei.value.library_message  # opus_strerror's text, e.g. "corrupted stream"
        assert "Opus packet" in str(ei.value)
        assert dec.pts == 0
        assert dec.decode(good).samples.shape == (960, 1)


def test_truncated_multi_frame_packet() -> None:
    with OpusEncoder(application="lowdelay", bitrate_kbps=64) as enc:
        pkt = enc.encode(AudioFrame(chirp(2880)[:, None].copy()))  # 3 x 20 ms CELT
    assert pkt[0] & 3 == 3 and pkt[1] & 0x80  # code 3, VBR: frame lengths in the header
    with OpusDecoder() as dec:
        with pytest.raises(CodecError, match="corrupt"):
            dec.decode(pkt[:4])
        assert dec.decode(pkt).samples.shape == (2880, 1)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=1500))
def test_garbage_never_crashes(data: bytes) -> None:
    with OpusDecoder(channels=2) as dec:
        try:
            f = dec.decode(data)
        except CodecError:
            pass
        else:
            assert f.samples.shape[1] == 2 and f.samples.shape[0] % 120 == 0
        dec.decode(None)  # still usable
        try:
            dec.decode(data, fec=True)
        except CodecError:
            pass


def test_wrong_inputs_name_the_problem() -> None:
    enc, dec = OpusEncoder(), OpusDecoder()
    with pytest.raises(CodecError, match="AudioFrame"):
        enc.encode(b"\x00" * 1920)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="AudioFrame"):
        enc.encode(np.zeros((960, 1), np.int16))  # type: ignore[arg-type]
    for n in (959, 961, 1440, 0, 5760):
        with pytest.raises(CodecError, match=r"2\.5, 5, 10, 20, 40 or 60 ms"):
            enc.encode(AudioFrame(np.zeros((n, 1), np.int16)))
    with pytest.raises(CodecError, match="1-channel"):
        enc.encode(AudioFrame(np.zeros((960, 2), np.int16)))
    with pytest.raises(CodecError, match="48000 Hz"):
        enc.encode(AudioFrame(np.zeros((320, 1), np.int16), 16000))
    with pytest.raises(CodecError, match="empty"):
        dec.decode(b"")
    for bad in ("abc", 12, [1, 2], np.zeros(4, np.uint8)):
        with pytest.raises(CodecError, match="bytes-like"):
            dec.decode(bad)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="fec must be True or False"):
        dec.decode(b"\xf8\x00", fec="yes")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="follows the lost one"):
        dec.decode(None, fec=True)
    for ms in (3, 0, -2.5, 122.5, "20", True):
        with pytest.raises(CodecError, match="duration"):
            dec.decode(None, duration_ms=ms)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="concealment and FEC only"):
        dec.decode(_good_packet(), duration_ms=20)
    # both still work
    assert dec.decode(memoryview(enc.encode(AudioFrame(np.zeros((960, 1), np.int16))))).pts == 0
    enc.close()
    dec.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sample_rate": 44100}, "sample_rate"),
        ({"sample_rate": 48000.0}, "sample_rate"),
        ({"channels": 3}, "channels"),
        ({"channels": 0}, "channels"),
        ({"bitrate_kbps": 2}, "bitrate_kbps"),
        ({"bitrate_kbps": 600}, "bitrate_kbps"),
        ({"bitrate_kbps": "32"}, "bitrate_kbps"),
        ({"bitrate_kbps": float("nan")}, "bitrate_kbps"),
        ({"application": "music"}, "application"),
        ({"complexity": 11}, "complexity"),
        ({"complexity": -1}, "complexity"),
        ({"complexity": 5.5}, "complexity"),
        ({"fec": "yes"}, "fec"),
        ({"expected_loss_pct": 101}, "expected_loss_pct"),
        ({"dtx": 2}, "dtx"),
        ({"vbr": "cbr"}, "vbr"),
    ],
)
def test_encoder_parameters_are_validated(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(CodecError, match=match):
        OpusEncoder(**kwargs)  # type: ignore[arg-type]


def test_setters_are_validated_and_keep_the_old_value() -> None:
    with OpusEncoder(bitrate_kbps=32) as enc:
        for attr, bad in [
            ("bitrate_kbps", 0), ("complexity", 12), ("fec", None),
            ("expected_loss_pct", -1), ("dtx", "on"), ("vbr", "fast"),
        ]:
            with pytest.raises(CodecError, match=attr):
                setattr(enc, attr, bad)
        assert enc.bitrate_kbps == 32 and enc.complexity == 9 and enc.vbr == "constrained"


@pytest.mark.parametrize("kwargs", [{"sample_rate": 22050}, {"channels": 6}])
def test_decoder_parameters_are_validated(kwargs: dict[str, int]) -> None:
    with pytest.raises(CodecError):
        OpusDecoder(**kwargs)


def test_closed_objects_raise_closed_error() -> None:
    enc, dec = OpusEncoder(), OpusDecoder()
    frame = AudioFrame(np.zeros((960, 1), np.int16))
    pkt = enc.encode(frame)
    with enc, dec:
        pass
    assert enc.closed and dec.closed
    enc.close()
    dec.close()  # idempotent
    with pytest.raises(ClosedError):
        enc.encode(frame)
    with pytest.raises(ClosedError):
        enc.bitrate_kbps = 20
    with pytest.raises(ClosedError):
        _ = enc.lookahead
    with pytest.raises(ClosedError):
        dec.decode(pkt)
    with pytest.raises(ClosedError):
        dec.decode(None)
    with pytest.raises(ClosedError):
        _ = dec.final_range
    assert "closed" in repr(enc) and "closed" in repr(dec)


def test_one_encoder_shared_by_threads_and_closed_under_load() -> None:
    """Calls are serialised by the object's lock; close() waits for a call in flight."""
    frames = frames_of(chirp(RATE)[:, None], 960)
    enc = OpusEncoder()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for f in frames * 4:
                enc.encode(f)
        except ClosedError:
            pass
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    enc.close()
    for t in threads:
        t.join()
    assert not errors


# -- Ogg: CRC, writer and reader -------------------------------------------------------------
def _crc_model(data: bytes) -> int:
    """Bit-by-bit CRC-32 of RFC 3533: poly 0x04C11DB7, init 0, MSB first, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x8000_0000 else crc << 1
            crc &= 0xFFFF_FFFF
    return crc


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_ogg_crc_matches_the_bitwise_model(data: bytes) -> None:
    assert ogg_crc32(data) == _crc_model(data)


def test_ogg_crc_known_page() -> None:
    # CRC-32/CKSUM (same polynomial, init 0, no reflection) has the check value 0x765E7680
    # for "123456789" after its final XOR with 0xFFFFFFFF; Ogg's CRC is the same without it.
    assert ogg_crc32(b"123456789") == 0x89A1897F
    assert ogg_crc32(b"") == 0


def test_opus_packet_samples_from_toc() -> None:
    assert opus_packet_samples(bytes([0 << 3])) == 480  # SILK NB 10 ms
    assert opus_packet_samples(bytes([3 << 3])) == 2880  # SILK NB 60 ms
    assert opus_packet_samples(bytes([13 << 3 | 1, 0])) == 1920  # hybrid 20 ms, 2 frames
    assert opus_packet_samples(bytes([16 << 3])) == 120  # CELT 2.5 ms
    assert opus_packet_samples(bytes([31 << 3 | 3, 6])) == 5760  # CELT 20 ms x 6
    with pytest.raises(CodecError):
        opus_packet_samples(bytes([31 << 3 | 3, 7]))  # 140 ms
    with pytest.raises(CodecError):
        opus_packet_samples(b"")


def _encode(pcm: np.ndarray, channels: int = 1, frame: int = 960) -> tuple[list[bytes], int]:
    with OpusEncoder(channels=channels, bitrate_kbps=24 * channels) as enc:
        return [enc.encode(f) for f in frames_of(pcm, frame)], enc.lookahead


def test_ogg_round_trip(tmp_path: Path) -> None:
    packets, pre_skip = _encode(np.stack([chirp(RATE), tone(RATE, 500)], axis=1), 2)
    packets.append(b"\xf8" + bytes(range(256)) * 2)  # 513 bytes: lacing 255, 255, 3
    path = tmp_path / "a.opus"
    comments = ["TITLE=callpipe test", "ARTIST=ü"]
    with OggOpusWriter(path, 48000, 2, pre_skip, comments=comments, serial=7,
                       max_page_ms=100) as w:
        for p in packets[:-1]:
            w.write(p)
        w.write(packets[-1], samples=400)  # end trim: 960 - 400 samples dropped
        assert w.granule_position == 50 * 960 + 400
    with OggOpusReader(path) as r:
        assert (r.channels, r.pre_skip, r.input_sample_rate) == (2, pre_skip, 48000)
        assert r.vendor == "callpipe" and r.comments == comments
        assert r.mapping_family == 0 and r.output_gain_db == 0
        got = list(r)
        again = list(r)  # each iteration starts from the first packet
    assert [p.data for p in got] == packets == [p.data for p in again]
    assert [p.granule_position for p in got[:-1]] == [960 * (i + 1) for i in range(50)]
    assert got[-1] == OggOpusPacket(packets[-1], 960, 50 * 960 + 400, 560)
    raw = path.read_bytes()
    assert raw.count(b"OggS") == 2 + 11  # headers, then pages of 100 ms
    assert raw[5] == 0x02 and struct.unpack_from("<I", raw, 14)[0] == 7  # BOS, serial


def test_ogg_long_comment_header_spans_pages(tmp_path: Path) -> None:
    comments = ["X=" + "y" * 70_000, "SHORT=1"]
    path = tmp_path / "c.opus"
    packets, _ = _encode(chirp(4800)[:, None])
    with OggOpusWriter(path, comments=comments) as w:
        for p in packets:
            w.write(p)
    with OggOpusReader(path) as r:
        assert r.comments == comments
        assert [p.data for p in r] == packets


def test_ogg_reader_joins_packets_that_span_pages(tmp_path: Path) -> None:
    """A hand-built file (RFC 3533 framing) whose second audio packet crosses a page."""
    from callpipe.codecs import ogg

    serial = 99
    head = ogg._HEAD.pack(b"OpusHead", 1, 1, 0, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 1) + b"v" + struct.pack("<I", 0)
    p1 = b"\xf8" + b"\x11" * 99  # CELT FB 20 ms, 100 bytes
    p2 = b"\xf8" + b"\x22" * 599  # 600 bytes: 255 + 255 on page 2, 90 on page 3

    def page(flags: int, gp: int, seq: int, lacing: bytes, body: bytes) -> bytes:
        hdr = ogg._PAGE.pack(b"OggS", 0, flags, gp, serial, seq, 0, len(lacing))
        b = bytearray(hdr + lacing + body)
        struct.pack_into("<I", b, 22, ogg_crc32(b))
        return bytes(b)

    data = (
        page(2, 0, 0, b"\x13", head)
        + page(0, 0, 1, bytes([len(tags)]), tags)
        + page(0, 960, 2, b"\x64\xff\xff", p1 + p2[:510])
        + page(1 | 4, 1920, 3, b"\x5a", p2[510:])
    )
    path = tmp_path / "span.opus"
    path.write_bytes(data)
    with OggOpusReader(path) as r:
        assert [(p.data, p.granule_position) for p in r] == [(p1, 960), (p2, 1920)]
    # the same with page 3 missing its "continued" flag is an error
    path.write_bytes(data[: -len(page(5, 1920, 3, b"\x5a", p2[510:]))]
                     + page(4, 1920, 3, b"\x5a", p2[510:]))
    with OggOpusReader(path) as r, pytest.raises(CodecError, match="cut short"):
        list(r)


def _sample_file(tmp_path: Path) -> Path:
    packets, pre_skip = _encode(chirp(9600)[:, None])
    path = tmp_path / "s.opus"
    with OggOpusWriter(path, pre_skip=pre_skip, max_page_ms=40) as w:
        for p in packets:
            w.write(p)
    return path


def test_ogg_reader_rejects_bad_files(tmp_path: Path) -> None:
    good = _sample_file(tmp_path).read_bytes()
    bad = tmp_path / "bad.opus"

    def expect(data: bytes, match: str) -> None:
        bad.write_bytes(data)
        with pytest.raises(CodecError, match=match):
            with OggOpusReader(bad) as r:
                list(r)

    expect(b"", "empty file")
    expect(b"RIFF" + b"\x00" * 60, "not an Ogg file")
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x40
    expect(bytes(flipped), "CRC mismatch")
    expect(good[:-7], "truncated Ogg page")
    expect(good[:20], "truncated Ogg page header")
    last = good.rfind(b"OggS")
    expect(good[:last], "without its last page")
    second = good.find(b"OggS", good.find(b"OggS", 1) + 1)
    third = good.find(b"OggS", second + 1)
    expect(good[:second] + good[third:], "pages are missing")
    not_opus = bytearray(good)
    not_opus[28:36] = b"OpusHeaX"
    struct.pack_into("<I", not_opus, 22, 0)
    struct.pack_into("<I", not_opus, 22, ogg_crc32(not_opus[: good.find(b"OggS", 1)]))
    expect(bytes(not_opus), "no Opus stream")
    with pytest.raises(CodecError, match="cannot open"):
        OggOpusReader(tmp_path / "missing.opus")


def test_ogg_writer_rejects_bad_use(tmp_path: Path) -> None:
    with pytest.raises(CodecError, match="channels"):
        OggOpusWriter(tmp_path / "x.opus", channels=3)
    with pytest.raises(CodecError, match="pre_skip"):
        OggOpusWriter(tmp_path / "x.opus", pre_skip=-1)
    with pytest.raises(CodecError, match="sample_rate_in"):
        OggOpusWriter(tmp_path / "x.opus", sample_rate_in=0)
    with pytest.raises(CodecError, match="cannot create"):
        OggOpusWriter(tmp_path / "no" / "dir.opus")
    w = OggOpusWriter(tmp_path / "w.opus")
    pkt = _good_packet()
    with pytest.raises(CodecError, match="bytes-like"):
        w.write("abc")  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="1..65024 bytes"):
        w.write(b"")
    with pytest.raises(CodecError, match="samples must be 0..960"):
        w.write(pkt, samples=961)
    with pytest.raises(CodecError, match="frame count"):
        w.write(b"\x03")
    w.write(pkt, samples=100)
    with pytest.raises(CodecError, match="trimmed"):
        w.write(pkt)
    w.close()
    w.close()
    with pytest.raises(ClosedError):
        w.write(pkt)
    with OggOpusReader(tmp_path / "w.opus") as r:
        assert [(p.granule_position, p.end_trim) for p in r] == [(100, 860)]
    with pytest.raises(ClosedError):
        list(r)
