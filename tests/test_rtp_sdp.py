"""callpipe.rtp.sdp: the plain-RTP SDP subset, written and parsed; clear errors on bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callpipe.errors import TransportError
from callpipe.rtp.sdp import RtpMap, SdpError, parse_sdp, read_sdp_file, write_sdp

# what `ffmpeg ... -f rtp rtp://127.0.0.1:5004 -sdp_file x.sdp` writes for VP8 + Opus
FFMPEG_SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nt=0 0\r\n"
    "a=tool:libavformat LIBAVFORMAT_VERSION\r\n"
    "m=video 5004 RTP/AVP 96\r\nc=IN IP4 127.0.0.1\r\nb=AS:500\r\na=rtpmap:96 VP8/90000\r\n"
    "m=audio 5006 RTP/AVP 97\r\nc=IN IP4 127.0.0.1\r\nb=AS:48\r\na=rtpmap:97 opus/48000/2\r\n"
    "a=fmtp:97 sprop-stereo=1\r\n"
)


def test_write_then_parse_round_trip() -> None:
    text = write_sdp("127.0.0.1", 5004, 5006, framerate=30, session_id=7)
    assert text.endswith("\r\n") and "\n\n" not in text
    lines = text.split("\r\n")
    assert lines[:5] == ["v=0", "o=- 7 0 IN IP4 127.0.0.1", "s=callpipe", "c=IN IP4 127.0.0.1",
                         "t=0 0"]
    assert "m=video 5004 RTP/AVP 96" in lines and "a=rtpmap:96 VP8/90000" in lines
    assert "m=audio 5006 RTP/AVP 111" in lines and "a=rtpmap:111 opus/48000/2" in lines
    sd = parse_sdp(text)
    assert sd.address == "127.0.0.1" and sd.session_name == "callpipe"
    video, audio = sd.stream("video"), sd.stream("audio")
    assert video is not None and audio is not None
    assert video.port == 5004 and video.rtcp_port == 5005 and video.framerate == 30
    assert video.encoding() == RtpMap(96, "VP8", 90000)
    assert audio.port == 5006 and audio.rtcp_port == 5007
    assert audio.find("OPUS") == RtpMap(111, "opus", 48000, 2)
    assert audio.fmtp[111] == {"minptime": "10", "useinbandfec": "1", "sprop-stereo": "0"}
    assert video.direction == audio.direction == "sendonly"
    assert sd.address_of(video) == "127.0.0.1"


def test_video_only_audio_only_stereo_and_ipv6() -> None:
    v = parse_sdp(write_sdp("10.0.0.2", video_port=6000))
    assert [m.media for m in v.media] == ["video"]
    a = parse_sdp(write_sdp("::1", audio_port=6002, stereo=True, audio_payload_type=100))
    assert a.address == "::1" and [m.media for m in a.media] == ["audio"]
    (m,) = a.media
    assert m.payload_types == (100,) and m.fmtp[100]["sprop-stereo"] == "1"
    assert "c=IN IP6 ::1" in write_sdp("::1", 6000)


def test_parses_ffmpeg_sdp_with_per_media_connection() -> None:
    sd = parse_sdp(FFMPEG_SDP)
    assert sd.address is None and sd.session_name == "No Name"
    video, audio = sd.media
    assert video.address == audio.address == "127.0.0.1"
    assert sd.address_of(audio) == "127.0.0.1"
    assert video.find("vp8") == RtpMap(96, "VP8", 90000)
    assert audio.find("opus") == RtpMap(97, "opus", 48000, 2)
    assert video.find("opus") is None


def test_attributes_rtcp_port_static_types_and_unknown_lines() -> None:
    sd = parse_sdp("v=0\nc=IN IP4 192.0.2.1/127\nm=audio 7000 RTP/AVP 0 8\na=rtcp:7100\n"
                   "a=ptime:20\nb=AS:64\nx=whatever\n")
    (m,) = sd.media
    assert sd.address == "192.0.2.1" and m.rtcp_port == 7100
    assert m.rtpmaps[0].encoding == "PCMU" and m.rtpmaps[8].encoding == "PCMA"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty description"),
        ("v=1\n", "line 1: an SDP starts with 'v=0'"),
        ("v=0\n\nm=video 1 RTP/AVP 96\n", "line 2: empty line"),
        ("v=0\nnot a line\n", "line 2: expected '<letter>=<value>'"),
        ("v=0\nc=IN IP4 127.0.0.1\n", "no m= line"),
        ("v=0\nm=video 5004 RTP/AVP 96\na=rtpmap:96 VP8/90000\n", "no c= connection address"),
        ("v=0\nc=IN IP5 x\nm=video 1 RTP/AVP 96\n", "line 2: c= must be"),
        ("v=0\nc=IN IP6 127.0.0.1\nm=video 1 RTP/AVP 96\n", "line 2: address 127.0.0.1 is not IP6"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 70000 RTP/AVP 96\n", "line 3: m= port must be 0..65535"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 5004 TCP 96\n", "line 3: unsupported transport"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 5004 RTP/AVP\n", "line 3: m= must be"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 5004 RTP/AVP 200\n", "payload type must be 0..127"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 5004 RTP/AVP 96\n", "payload type 96 of the video"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 5004 RTP/AVP 96\na=rtpmap:96 VP8\n",
         "line 4: rtpmap must be"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 5004 RTP/AVP 96\na=rtpmap:96 VP8/fast\n",
         "line 4: rtpmap clock rate must be an integer"),
        ("v=0\nc=IN IP4 1.2.3.4\nm=video 5004 RTP/AVP 96\na=framerate:-3\n",
         "line 4: a=framerate must be in"),
        ("v=0\nv=0\n", "line 2: a second v= line"),
    ],
)
def test_bad_sdp_names_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(SdpError) as info:
        parse_sdp(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, TransportError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"address": "localhost", "video_port": 5004}, "not an IPv4 or IPv6 address"),
        ({"address": "127.0.0.1"}, "needs a video port, an audio port or both"),
        ({"address": "127.0.0.1", "video_port": 65535}, "video port must be 1..65534"),
        ({"address": "127.0.0.1", "audio_port": 0}, "audio port must be 1..65534"),
        ({"address": "127.0.0.1", "video_port": 5004, "video_payload_type": 8},
         "must be dynamic"),
        ({"address": "127.0.0.1", "video_port": 5004, "audio_port": 5005}, "overlap"),
        ({"address": "127.0.0.1", "video_port": 5004, "audio_port": 5006,
          "audio_payload_type": 96}, "different payload types"),
        ({"address": "127.0.0.1", "video_port": 5004, "framerate": 0}, "framerate"),
        ({"address": "127.0.0.1", "video_port": 5004, "session_name": "a\nb"}, "one non-empty"),
        ({"address": "127.0.0.1", "video_port": 5004, "direction": "both"}, "direction"),
    ],
)
def test_write_sdp_rejects_bad_arguments(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(SdpError, match=fragment):
        write_sdp(**kwargs)  # type: ignore[arg-type]


def test_read_sdp_file_names_the_file(tmp_path: object) -> None:
    from pathlib import Path

    p = Path(str(tmp_path)) / "x.sdp"
    p.write_text("v=0\nm=video 1 RTP/AVP 96\n")
    with pytest.raises(SdpError) as info:
        read_sdp_file(str(p))
    assert str(p) in str(info.value) and info.value.line is None
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(SdpError, match="cannot read it"):
        read_sdp_file(str(p))


_LINES = st.sampled_from([
    "v=0", "c=IN IP4 127.0.0.1", "c=IN IP6 ::1", "m=video 5004 RTP/AVP 96",
    "m=audio 5006 RTP/AVP 111 0", "a=rtpmap:96 VP8/90000", "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 a=1;;b", "a=rtcp:9", "a=framerate:30", "s=x", "o=- 1 1 IN IP4 1.1.1.1",
    "a=rtpmap:", "m=", "c=", "a=fmtp:", "a=rtcp:", "a=framerate:x", "t=0 0", "",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_LINES, st.text(max_size=30)), max_size=12))
def test_fuzz_parse_sdp_only_raises_sdp_error(lines: list[str]) -> None:
    text = "\r\n".join(lines)
    try:
        sd = parse_sdp(text)
    except SdpError:
        return
    assert sd.media
    for m in sd.media:
        assert 0 <= m.port <= 65535
        sd.address_of(m)  # every stream has an address
