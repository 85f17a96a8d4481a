"""Opus over RTP (RFC 7587): TOC durations (RFC 6716 Table 2), 48 kHz timestamps whatever the
encoder rate, DTX talkspurts and the marker bit with the real libopus encoder, loss vs DTX on
the receive side, and a fuzz target for the TOC parser.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.codecs.opus import OpusDecoder, OpusEncoder
from callpipe.errors import TransportError
from callpipe.media.frames import AudioFrame
from callpipe.rtp.opus import (
    OPUS_CLOCK_RATE,
    OpusDepacketizer,
    OpusPacketizer,
    opus_packet_samples,
)
from callpipe.rtp.packet import AudioLevel, ExtensionIds, RtpPacket

# RFC 6716 section 3.1, Table 2: configuration -> frame size in ms
TABLE2_MS = [10, 20, 40, 60] * 3 + [10, 20] * 2 + [2.5, 5, 10, 20] * 4


@pytest.mark.parametrize("config", range(32))
def test_toc_durations(config: int) -> None:
    frame = int(TABLE2_MS[config] * 48)
    assert opus_packet_samples(bytes([config << 3 | 0])) == frame  # code 0: one frame
    assert opus_packet_samples(bytes([config << 3 | 1, 0, 0])) == 2 * frame  # code 1
    assert opus_packet_samples(bytes([config << 3 | 2, 1, 0])) == 2 * frame  # code 2
    for m in range(1, 49):  # code 3: M frames, at most 120 ms
        toc = bytes([config << 3 | 3, m])
        if m * frame <= 5760:
            assert opus_packet_samples(toc) == m * frame
        else:
            with pytest.raises(TransportError, match="120 ms"):
                opus_packet_samples(toc)


def test_toc_errors() -> None:
    with pytest.raises(TransportError, match="empty"):
        opus_packet_samples(b"")
    with pytest.raises(TransportError, match="frame count"):
        opus_packet_samples(b"\x03")
    with pytest.raises(TransportError, match="0 frames"):
        opus_packet_samples(b"\x03\x00")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4))
def test_fuzz_toc_parser(data: bytes) -> None:
    try:
        n = opus_packet_samples(data)
    except TransportError:
        return
    assert n in {120 * k for k in range(1, 49)} and n <= 5760


def _tone(n: int, rate: int, start: int = 0) -> np.ndarray:
    t = (np.arange(n) + start) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)


@pytest.mark.parametrize(("rate", "frame_ms"), [(48000, 20), (16000, 10), (8000, 60)])
def test_timestamps_count_48khz_whatever_the_encoder_rate(rate: int, frame_ms: int) -> None:
    n = rate * frame_ms // 1000
    tx = OpusPacketizer(0x1111, 111, sequence_number=65534, timestamp=2**32 - 2 * 48 * frame_ms)
    rx = OpusDepacketizer()
    with OpusEncoder(sample_rate=rate, channels=1, bitrate_kbps=24) as enc, OpusDecoder(
        sample_rate=48000
    ) as dec:
        frames = []
        for i in range(6):
            opus = enc.encode(AudioFrame.from_pcm(_tone(n, rate, i * n)[:, None], rate))
            wire = tx.packetize(opus)
            assert wire is not None
            frames.append(rx.push(wire))
        ts = [f.timestamp for f in frames]
        step = 48 * frame_ms
        assert [f.samples for f in frames] == [step] * 6
        assert ts == [2**32 - 2 * step + i * step for i in range(6)]  # unwrapped over the wrap
        assert [f.sequence for f in frames] == [65534 + i for i in range(6)]
        assert [f.talkspurt_start for f in frames] == [True] + [False] * 5
        assert all(f.lost == 0 and f.gap_samples == 0 and not f.late for f in frames)
        pcm = dec.decode(frames[-1].data)
        assert pcm is not None and pcm.samples.shape[0] == step
    assert OPUS_CLOCK_RATE == 48000


def test_dtx_talkspurts_and_marker_with_real_libopus() -> None:
    rate, n = 48000, 960
    silence = np.zeros(n, np.int16)
    tx = OpusPacketizer(7, 111, sequence_number=0, timestamp=0)
    rx = OpusDepacketizer()
    with OpusEncoder(sample_rate=rate, channels=1, bitrate_kbps=24, dtx=True) as enc:
        sent = []
        for i in range(80):
            pcm = _tone(n, rate, i * n) if (i < 10 or i >= 60) else silence
            wire = tx.packetize(enc.encode(AudioFrame.from_pcm(pcm[:, None], rate)))
            if wire is not None:
                sent.append((i, rx.push(wire)))
    dropped = 80 - len(sent)
    assert dropped > 10  # libopus went into DTX during the silence
    marks = [(i, f) for i, f in sent if f.talkspurt_start]
    assert marks[0][0] == 0
    # the first packet after the DTX pause starts a talkspurt: a timestamp jump, no seq gap
    resumed = [f for i, f in marks[1:]]
    assert resumed, "no talkspurt after the silence"
    assert all(f.lost == 0 and f.gap_samples > 0 and f.gap_samples % 960 == 0 for f in resumed)
    seqs = [f.sequence for _, f in sent]
    assert seqs == list(range(len(sent)))  # DTX costs no sequence numbers
    assert sent[-1][1].timestamp == 79 * 960


def test_loss_duplicates_late_and_audio_level() -> None:
    ids = ExtensionIds(audio_level=1, transport_cc=2)
    tx = OpusPacketizer(9, 111, sequence_number=10, timestamp=1000, extension_ids=ids)
    wires = [tx.packetize(b"\x78\x01\x02\x03", audio_level=AudioLevel(True, 20 + i))
             for i in range(6)]
    assert all(w is not None for w in wires)
    pkts = [RtpPacket.parse(w) for w in wires if w is not None]
    assert [p.extension(2) for p in pkts] == [bytes([0, i]) for i in range(6)]
    rx = OpusDepacketizer(extension_ids=ids)
    a = rx.push(pkts[0])
    c = rx.push(pkts[2])  # packet 1 lost (or late)
    assert a is not None and c is not None
    assert (c.lost, c.gap_samples) == (1, 960)
    b = rx.push(pkts[1])
    assert b is not None and b.late and b.lost == 0
    assert rx.push(pkts[2]) is None and rx.duplicates == 1
    d = rx.push(pkts[3])
    assert d is not None and d.audio_level == AudioLevel(True, 23) and d.lost == 0
    with pytest.raises(TransportError, match="SSRC"):
        rx.push(pkts[4].replace(ssrc=1))
    with pytest.raises(TransportError, match="empty Opus"):
        rx.push(pkts[4].replace(payload=b""))
    with pytest.raises(TransportError):
        rx.push(b"\x00garbage")


def test_packetizer_options() -> None:
    tx = OpusPacketizer(1, 111, sequence_number=0, timestamp=0, send_dtx=True)
    first = tx.packetize(b"\x78")
    assert first is not None and RtpPacket.parse(first).payload == b"\x78"
    second = tx.packetize(b"\x78\x00\x01", samples=480)
    assert second is not None and RtpPacket.parse(second).timestamp == 960
    assert tx.timestamp == 1440
    with pytest.raises(ValueError, match="samples"):
        tx.packetize(b"\x78", samples=0)
    with pytest.raises(ValueError, match="payload_type"):
        OpusPacketizer(1, 200)
