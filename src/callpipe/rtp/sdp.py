"""The small SDP subset (RFC 8866) that plain-RTP tools exchange: one VP8 video stream and/or
one Opus audio stream, unencrypted RTP/AVP, no ICE, no DTLS.

What :func:`write_sdp` produces, and what ffmpeg (``-i file.sdp``), GStreamer (``sdpdemux``)
and VLC open::

    v=0
    o=- <session id> 0 IN IP4 127.0.0.1
    s=callpipe
    c=IN IP4 127.0.0.1
    t=0 0
    m=video 5004 RTP/AVP 96
    a=rtpmap:96 VP8/90000
    a=framerate:30
    a=sendonly
    m=audio 5006 RTP/AVP 111
    a=rtpmap:111 opus/48000/2
    a=fmtp:111 minptime=10;useinbandfec=1;sprop-stereo=0
    a=sendonly

RTCP goes to the port after each RTP port (RFC 3550 section 11), unless ``a=rtcp:PORT``
says otherwise.

:func:`parse_sdp` reads that subset back -- and anything richer that follows the grammar (for
example ffmpeg's ``-sdp_file`` output): it keeps the session address, each ``m=`` line's
media, port, protocol and payload types, and the ``rtpmap`` / ``fmtp`` / ``rtcp`` /
``framerate`` attributes; everything else is skipped.  Malformed input raises
:class:`SdpError` naming the line.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

from ..errors import TransportError

__all__ = [
    "SdpError",
    "RtpMap",
    "MediaDescription",
    "SessionDescription",
    "parse_sdp",
    "write_sdp",
    "read_sdp_file",
    "VP8_PAYLOAD_TYPE",
    "OPUS_PAYLOAD_TYPE",
]

#: the dynamic payload types callpipe's SDP uses (ffmpeg uses the same for VP8 and Opus)
VP8_PAYLOAD_TYPE = 96
OPUS_PAYLOAD_TYPE = 111

_PROTOCOLS = ("RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF")


class SdpError(TransportError, ValueError):
    """An SDP text that cannot be used (syntax error, missing line, unsupported content).

    :param message: what is wrong, naming the line when there is one.
    :param line: 1-based line number of the fault, or None.
    :param source: where the text came from (a file name), or None.
    """

    def __init__(self, message: str, line: int | None = None, source: str | None = None) -> None:
        self.detail, self.line, self.source = message, line, source
        where = "SDP" if source is None else f"SDP {source}"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class RtpMap:
    """One ``a=rtpmap`` entry.

    :param payload_type: RTP payload type, 0..127.
    :param encoding: encoding name as written (``VP8``, ``opus``, ...).
    :param clock_rate: RTP clock rate, Hz.
    :param channels: audio channels (``opus`` always says 2), or None when not given.
    """

    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        tail = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One ``m=`` section.

    :param media: ``"video"``, ``"audio"`` or another media word.
    :param port: RTP port, 0..65535 (0: the stream is disabled).
    :param protocol: transport protocol, e.g. ``"RTP/AVP"``.
    :param payload_types: the payload types listed on the ``m=`` line, in order.
    :param rtpmaps: ``a=rtpmap`` entries by payload type.
    :param fmtp: ``a=fmtp`` parameters by payload type (name -> value; a bare name maps to "").
    :param rtcp_port: RTCP port (``a=rtcp``, else ``port + 1``).
    :param address: this section's ``c=`` address, or None to use the session's.
    :param framerate: ``a=framerate`` in frames/s, or None.
    :param direction: ``sendrecv``, ``sendonly``, ``recvonly`` or ``inactive``.
    """

    media: str
    port: int
    protocol: str
    payload_types: tuple[int, ...]
    rtpmaps: dict[int, RtpMap] = field(default_factory=dict)
    fmtp: dict[int, dict[str, str]] = field(default_factory=dict)
    rtcp_port: int | None = None
    address: str | None = None
    framerate: float | None = None
    direction: str = "sendrecv"

    def encoding(self, payload_type: int | None = None) -> RtpMap | None:
        """The rtpmap of ``payload_type`` (default: the first on the ``m=`` line), or None."""
        pt = self.payload_types[0] if payload_type is None else payload_type
        return self.rtpmaps.get(pt)

    def find(self, encoding: str) -> RtpMap | None:
        """The first listed payload type whose encoding name is ``encoding`` (any case)."""
        for pt in self.payload_types:
            m = self.rtpmaps.get(pt)
            if m is not None and m.encoding.lower() == encoding.lower():
                return m
        return None


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A parsed SDP text.

    :param address: the session ``c=`` address (IPv4 or IPv6 text), or None when every media
        section has its own.
    :param media: the ``m=`` sections in order.
    :param session_name: the ``s=`` text.
    :param origin: the ``o=`` line's value.
    """

    address: str | None
    media: tuple[MediaDescription, ...]
    session_name: str = "-"
    origin: str = ""

    def stream(self, media: str) -> MediaDescription | None:
        """The first ``m=`` section of kind ``media`` (``"video"`` / ``"audio"``), or None."""
        for m in self.media:
            if m.media == media:
                return m
        return None

    def address_of(self, m: MediaDescription) -> str:
        """Where ``m``'s RTP goes: its own ``c=`` address, else the session's."""
        addr = m.address or self.address
        if addr is None:
            raise SdpError(f"no c= connection address for the {m.media} stream")
        return addr


def _int(text: str, what: str, lo: int, hi: int, line: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise SdpError(f"{what} must be an integer, got {text!r}", line) from None
    if not lo <= value <= hi:
        raise SdpError(f"{what} must be {lo}..{hi}, got {value}", line)
    return value


def _connection(value: str, line: int) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"c= must be 'IN IP4 <address>' or 'IN IP6 <address>', got {value!r}",
                       line)
    addr = parts[2].split("/")[0]  # multicast TTL / count suffixes
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        # a host name is legal SDP; keep it for the resolver
        if not addr or any(c.isspace() for c in addr):
            raise SdpError(f"bad connection address {addr!r}", line) from None
        return addr
    if (ip.version == 4) != (parts[1] == "IP4"):
        raise SdpError(f"address {addr} is not {parts[1]}", line)
    return addr


class _MediaBuilder:
    def __init__(self, media: str, port: int, protocol: str, pts: tuple[int, ...]) -> None:
        self.media, self.port, self.protocol, self.pts = media, port, protocol, pts
        self.rtpmaps: dict[int, RtpMap] = {}
        self.fmtp: dict[int, dict[str, str]] = {}
        self.rtcp_port: int | None = None
        self.address: str | None = None
        self.framerate: float | None = None
        self.direction = "sendrecv"

    def build(self) -> MediaDescription:
        return MediaDescription(
            self.media, self.port, self.protocol, self.pts, self.rtpmaps, self.fmtp,
            self.rtcp_port if self.rtcp_port is not None else (self.port + 1 if self.port else 0),
            self.address, self.framerate, self.direction,
        )


# RTP/AVP static payload types a plain-RTP SDP may list without an rtpmap
_STATIC = {0: RtpMap(0, "PCMU", 8000, 1), 8: RtpMap(8, "PCMA", 8000, 1)}


def _attribute(m: _MediaBuilder, value: str, line: int) -> None:
    name, _, rest = value.partition(":")
    if name == "rtpmap":
        pt_text, _, enc = rest.partition(" ")
        pt = _int(pt_text, "rtpmap payload type", 0, 127, line)
        parts = enc.strip().split("/")
        if len(parts) not in (2, 3) or not parts[0]:
            raise SdpError(f"rtpmap must be '<pt> <name>/<clock rate>[/<channels>]', got {rest!r}",
                           line)
        rate = _int(parts[1], "rtpmap clock rate", 1, 10_000_000, line)
        ch = _int(parts[2], "rtpmap channels", 1, 255, line) if len(parts) == 3 else None
        m.rtpmaps[pt] = RtpMap(pt, parts[0], rate, ch)
    elif name == "fmtp":
        pt_text, _, params = rest.partition(" ")
        pt = _int(pt_text, "fmtp payload type", 0, 127, line)
        out: dict[str, str] = {}
        for item in params.split(";"):
            item = item.strip()
            if item:
                k, _, v = item.partition("=")
                out[k.strip()] = v.strip()
        m.fmtp[pt] = out
    elif name == "rtcp":
        m.rtcp_port = _int(rest.split()[0] if rest.split() else "", "a=rtcp port", 0, 65535, line)
    elif name == "framerate":
        try:
            fps = float(rest)
        except ValueError:
            raise SdpError(f"a=framerate must be a number of frames/s, got {rest!r}",
                           line) from None
        if not 0 < fps <= 1000:
            raise SdpError(f"a=framerate must be in (0, 1000] frames/s, got {rest!r}", line)
        m.framerate = fps
    elif name in ("sendrecv", "sendonly", "recvonly", "inactive"):
        m.direction = name


def parse_sdp(text: str) -> SessionDescription:
    """Parse an SDP text (the subset described in the module docs).

    :param text: the SDP (CRLF or LF line ends).
    :raises SdpError: on a line that is not ``<letter>=<value>``, a missing ``v=0``, a bad
        ``c=`` / ``m=`` / ``a=rtpmap`` / ``a=fmtp`` line, a listed dynamic payload type without
        an rtpmap, no ``m=`` section, or no connection address for a stream.
    """
    if not isinstance(text, str):
        raise SdpError(f"SDP must be text, got {type(text).__name__}")
    lines = [ln.rstrip("\r") for ln in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise SdpError("empty description")
    session_addr: str | None = None
    session_name, origin = "-", ""
    media: list[_MediaBuilder] = []
    seen_version = False
    for i, raw in enumerate(lines, 1):
        if not raw.strip():
            raise SdpError("empty line inside the description", i)
        if len(raw) < 2 or raw[1] != "=" or not raw[0].isalpha():
            raise SdpError(f"expected '<letter>=<value>', got {raw[:60]!r}", i)
        key, value = raw[0], raw[2:]
        if i == 1:
            if key != "v" or value.strip() != "0":
                raise SdpError(f"an SDP starts with 'v=0', got {raw[:60]!r}", i)
            seen_version = True
            continue
        if key == "v":
            raise SdpError("a second v= line", i)
        if key == "o" and not media:
            origin = value
        elif key == "s" and not media:
            session_name = value
        elif key == "c":
            addr = _connection(value, i)
            if media:
                media[-1].address = addr
            else:
                session_addr = addr
        elif key == "m":
            parts = value.split()
            if len(parts) < 4:
                raise SdpError(
                    f"m= must be '<media> <port> <proto> <payload types...>', got {value!r}", i)
            port = _int(parts[1].split("/")[0], "m= port", 0, 65535, i)
            if parts[2] not in _PROTOCOLS:
                raise SdpError(f"unsupported transport {parts[2]!r} (plain RTP uses RTP/AVP)", i)
            pts = tuple(_int(p, "m= payload type", 0, 127, i) for p in parts[3:])
            media.append(_MediaBuilder(parts[0], port, parts[2], pts))
        elif key == "a" and media:
            _attribute(media[-1], value, i)
    assert seen_version
    if not media:
        raise SdpError("no m= line: the description has no stream")
    built = []
    for mb in media:
        for pt in mb.pts:
            if pt not in mb.rtpmaps:
                if pt in _STATIC:
                    mb.rtpmaps[pt] = _STATIC[pt]
                elif pt >= 96:
                    raise SdpError(f"dynamic payload type {pt} of the {mb.media} stream has no "
                                   f"a=rtpmap line")
        if mb.address is None and session_addr is None:
            raise SdpError(f"no c= connection address for the {mb.media} stream")
        built.append(mb.build())
    return SessionDescription(session_addr, tuple(built), session_name, origin)


def read_sdp_file(path: str) -> SessionDescription:
    """Read and parse an SDP file.

    :param path: the file.
    :raises SdpError: when it cannot be read or parsed (the message names the file).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 20)
    except (OSError, UnicodeDecodeError) as e:
        raise SdpError(f"cannot read it: {e}", None, path) from None
    try:
        return parse_sdp(text)
    except SdpError as e:
        raise SdpError(e.detail, e.line, path) from None


def write_sdp(
    address: str,
    video_port: int | None = None,
    audio_port: int | None = None,
    *,
    video_payload_type: int = VP8_PAYLOAD_TYPE,
    audio_payload_type: int = OPUS_PAYLOAD_TYPE,
    framerate: float | None = None,
    stereo: bool = False,
    session_name: str = "callpipe",
    session_id: int | None = None,
    direction: str = "sendonly",
) -> str:
    """An SDP describing callpipe's plain RTP streams, for ffmpeg / GStreamer / VLC.

    :param address: where the RTP goes (the receiver's IPv4 or IPv6 address).
    :param video_port: RTP port of the VP8 stream (RTCP on the next port), or None for none.
    :param audio_port: RTP port of the Opus stream (RTCP on the next port), or None for none.
    :param video_payload_type: VP8 payload type, 96..127.
    :param audio_payload_type: Opus payload type, 96..127.
    :param framerate: nominal video frame rate, frames/s (``a=framerate``), or None.
    :param stereo: the Opus stream is stereo (``sprop-stereo=1``; decoders then output two
        channels).
    :param session_name: the ``s=`` text.
    :param session_id: the ``o=`` session id; default: random.
    :param direction: the media direction attribute as seen by the writer (``sendonly``: we send).
    :returns: the SDP text with CRLF line ends.
    :raises SdpError: for a bad address, port or payload type.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise SdpError(f"{address!r} is not an IPv4 or IPv6 address") from None
    if video_port is None and audio_port is None:
        raise SdpError("an SDP needs a video port, an audio port or both")
    for name, port in (("video", video_port), ("audio", audio_port)):
        if port is not None and not (isinstance(port, int) and 1 <= port <= 65534):
            raise SdpError(f"{name} port must be 1..65534 (RTCP takes the next), got {port!r}")
    for name, pt in (("video", video_payload_type), ("audio", audio_payload_type)):
        if not (isinstance(pt, int) and 96 <= pt <= 127):
            raise SdpError(f"{name} payload type must be dynamic (96..127), got {pt!r}")
    if video_port is not None and audio_port is not None:
        if video_payload_type == audio_payload_type:
            raise SdpError("video and audio need different payload types")
        if len({video_port, video_port + 1} & {audio_port, audio_port + 1}):
            raise SdpError(f"video ports {video_port}/{video_port + 1} and audio ports "
                           f"{audio_port}/{audio_port + 1} overlap")
    if direction not in ("sendrecv", "sendonly", "recvonly", "inactive"):
        raise SdpError(f"direction must be sendrecv, sendonly, recvonly or inactive, got "
                       f"{direction!r}")
    if any(c in session_name for c in "\r\n") or not session_name:
        raise SdpError("session_name must be one non-empty line")
    fam = "IP4" if ip.version == 4 else "IP6"
    sid = secrets.randbits(62) if session_id is None else session_id
    out = [
        "v=0",
        f"o=- {sid} 0 IN {fam} {ip}",
        f"s={session_name}",
        f"c=IN {fam} {ip}",
        "t=0 0",
    ]
    if video_port is not None:
        out += [f"m=video {video_port} RTP/AVP {video_payload_type}",
                f"a=rtpmap:{video_payload_type} VP8/90000"]
        if framerate is not None:
            if not 0 < framerate <= 1000:
                raise SdpError(f"framerate must be in (0, 1000] frames/s, got {framerate!r}")
            out.append(f"a=framerate:{framerate:g}")
        out.append(f"a={direction}")
    if audio_port is not None:
        out += [f"m=audio {audio_port} RTP/AVP {audio_payload_type}",
                f"a=rtpmap:{audio_payload_type} opus/48000/2",
                f"a=fmtp:{audio_payload_type} minptime=10;useinbandfec=1;"
                f"sprop-stereo={int(bool(stereo))}",
                f"a={direction}"]
    return "\r\n".join(out) + "\r\n"
