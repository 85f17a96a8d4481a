"""``callpipe stream``: send plain (unencrypted) RTP -- VP8 and Opus -- that standard tools play.

VP8 video goes to ``HOST:PORT`` and Opus audio to ``HOST:PORT+2``; RTCP sender reports (with
a CNAME shared by both streams, for lip sync) go to ``PORT+1`` and ``PORT+3``, and an RTCP BYE
ends each stream.  The SDP written with ``--sdp`` describes exactly that, so
``ffmpeg -protocol_whitelist file,udp,rtp -i out.sdp ...``, ``gst-launch-1.0 filesrc
location=out.sdp ! sdpdemux ...`` or ``vlc out.sdp`` can open it (start the receiver first:
RTP has no retransmission of what was sent before it listened; a keyframe every
``--keyframe-interval`` seconds lets late joiners in).

Sending is paced to real time.  RTCP that comes back to the sending socket (receiver reports,
PLI/FIR from ``callpipe receive``) is read: reports feed the live statistics, PLI/FIR ask the
encoder for a keyframe.

The small helpers shared with ``callpipe receive`` (address parsing, the stop flag, the
progress line) live here too.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from ..errors import CallpipeError

EXIT_USAGE = 2

#: one step of a media source: (media time in s or None for "now", a function making the frame)
Step = tuple[float | None, Callable[[], Any]]


# -- shared helpers ----------------------------------------------------------------------------
class UsageError(CallpipeError):
    """A command-line argument that cannot be used (reported with exit status 2)."""


def endpoint(text: str) -> tuple[str, int]:
    """argparse type for ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6): the numeric address and
    the port (1..65535), resolved once."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise argparse.ArgumentTypeError(f"write IPv6 addresses as [ADDR]:PORT, got {text!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a number, got {port_text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 1..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as e:
        raise argparse.ArgumentTypeError(f"cannot resolve host {host!r}: {e}") from None
    families = [i for i in infos if i[0] in (socket.AF_INET, socket.AF_INET6)]
    if not families:
        raise argparse.ArgumentTypeError(f"no IPv4/IPv6 address for {host!r}")
    return str(families[0][4][0]), port


def positive_seconds(text: str) -> float:
    """argparse type: a duration in seconds, > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 10 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"must be > 0 s (and at most 10 days), got {text}")
    return value


def udp_socket(address: str) -> socket.socket:
    """A UDP socket of ``address``'s family."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return socket.socket(family, socket.SOCK_DGRAM)


def check_output_path(path: str | None, what: str) -> None:
    """UsageError when ``path``'s directory does not exist."""
    if path is None:
        return
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{what}: directory {folder!r} does not exist")


class StopFlag:
    """Turns SIGINT and SIGTERM into a flag (and an event to sleep on) for a clean shutdown."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self._old: dict[int, Any] = {}

    def set(self, reason: str) -> None:
        """Ask the loop to stop, for ``reason`` (the first reason is kept)."""
        if self.reason is None:
            self.reason = reason
        self.event.set()

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self.set(f"stopped by {signal.Signals(signum).name}")

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` (s); True when asked to stop."""
        if seconds > 0:
            return self.event.wait(seconds)
        return self.event.is_set()


class Progress:
    """A once-a-second status line on stderr (rewritten in place on a terminal)."""

    def __init__(self, prefix: str, quiet: bool, interval_s: float = 1.0) -> None:
        self.prefix, self.quiet, self.interval = prefix, quiet, interval_s
        self.tty = sys.stderr.isatty()
        self._next = time.monotonic() + interval_s
        self._dirty = False

    def due(self) -> bool:
        """True once per interval."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.interval
        return True

    def show(self, text: str) -> None:
        """Print one status line."""
        if self.quiet:
            return
        if self.tty:
            sys.stderr.write(f"\r\x1b[K{self.prefix}: {text}")
            self._dirty = True
        else:
            sys.stderr.write(f"{self.prefix}: {text}\n")
        sys.stderr.flush()

    def message(self, text: str) -> None:
        """Print a message on its own line (not suppressed by quiet)."""
        self.end()
        sys.stderr.write(f"{self.prefix}: {text}\n")
        sys.stderr.flush()

    def end(self) -> None:
        """Finish the in-place line."""
        if self._dirty:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._dirty = False


def kbps(byte_count: int, seconds: float) -> float:
    """Bit rate in kbps of ``byte_count`` bytes over ``seconds`` s."""
    return 8 * byte_count / 1000 / seconds if seconds > 0 else 0.0


# -- the parser --------------------------------------------------------------------------------
def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``callpipe stream``."""
    p = sub.add_parser(
        "stream",
        help="send plain RTP (VP8 on PORT, Opus on PORT+2) and write an SDP for "
        "ffmpeg/GStreamer/VLC",
        description="Encode a source with VP8 and Opus and send it as standard, unencrypted RTP "
        "(RFC 7741 / RFC 7587): video to HOST:PORT, audio to HOST:PORT+2, RTCP sender reports "
        "to PORT+1 and PORT+3. Paced to real time. Writes an SDP (--sdp) that ffmpeg, "
        "GStreamer and VLC open; start the receiver first. Progress and live statistics go "
        "to stderr; Ctrl-C or SIGTERM stops cleanly (an RTCP BYE tells the receiver).",
        epilog="Example: ffmpeg -protocol_whitelist file,udp,rtp -i s.sdp out.mkv & "
        "callpipe stream --source synthetic --to 127.0.0.1:5004 --sdp s.sdp --duration 10",
    )
    p.add_argument("--source", default="synthetic", metavar="SOURCE",
                   help="synthetic (stamped test picture and tone), file:PATH (any media file "
                   "FFmpeg reads), or camera[:DEVICE] (video only) (default: %(default)s)")
    p.add_argument("--to", required=True, type=endpoint, metavar="HOST:PORT",
                   help="receiver address; VP8 goes to PORT, Opus to PORT+2, RTCP to PORT+1 "
                   "and PORT+3 (use an even PORT)")
    p.add_argument("--sdp", metavar="FILE",
                   help="write the SDP describing the streams here (before sending starts)")
    p.add_argument("--duration", type=positive_seconds, metavar="S",
                   help="stop after S seconds (default: until the source ends or Ctrl-C)")
    p.add_argument("--width", type=int, metavar="PIXELS",
                   help="picture width in pixels (default: 640 for synthetic, else the source's)")
    p.add_argument("--height", type=int, metavar="PIXELS",
                   help="picture height in pixels (default: 360 for synthetic, else the "
                   "source's)")
    p.add_argument("--fps", type=float, metavar="HZ",
                   help="frame rate in frames/s (default: 30 for synthetic and camera, else "
                   "the file's)")
    p.add_argument("--bitrate", type=int, default=800, metavar="KBPS",
                   help="VP8 target bitrate in kbps (default: %(default)s)")
    p.add_argument("--audio-bitrate", type=int, default=32, metavar="KBPS",
                   help="Opus target bitrate in kbps (default: %(default)s)")
    p.add_argument("--audio", action=argparse.BooleanOptionalAction, default=True,
                   help="send audio (Opus on PORT+2) when the source has it (default: on)")
    p.add_argument("--keyframe-interval", type=positive_seconds, default=2.0, metavar="S",
                   help="seconds between periodic keyframes, so late receivers can start "
                   "(default: %(default)s)")
    p.add_argument("--mtu", type=int, default=1200, metavar="BYTES",
                   help="largest RTP packet in bytes (default: %(default)s)")
    p.add_argument("--loop", action="store_true", help="file sources: start again at the end")
    p.add_argument("--stats-json", metavar="FILE",
                   help="write the sender's final statistics (JSON) here")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)
    return p


# -- sources -----------------------------------------------------------------------------------
class _Media:
    """What a source delivers, known before the first frame (the SDP needs it)."""

    def __init__(self) -> None:
        self.video: tuple[int, int, float] | None = None  # width, height (pixels), fps
        self.audio_channels: int | None = None
        self.steps: Iterator[Step] = iter(())
        self.close: Callable[[], None] = lambda: None


def _same(frame: Any) -> Any:
    return frame


def _synthetic(args: argparse.Namespace) -> _Media:
    from ..media import SyntheticAudioSource, SyntheticVideoSource

    w, h = args.width or 640, args.height or 360
    fps = args.fps or 30.0
    video = SyntheticVideoSource(w, h, fps)
    audio = SyntheticAudioSource(48000, 1, 20.0) if args.audio else None
    m = _Media()
    m.video = (w, h, fps)
    m.audio_channels = 1 if audio else None

    def steps() -> Iterator[Step]:
        n = k = 0
        while True:
            tv = n / fps
            ta = k * 0.020 if audio is not None else float("inf")
            if tv <= ta:
                yield tv, functools.partial(video.render, n)
                n += 1
            else:
                assert audio is not None
                yield ta, audio.read
                k += 1

    m.steps = steps()
    return m


def _file(args: argparse.Namespace, path: str) -> _Media:
    from ..media import FileSource
    from ..media.frames import VIDEO_CLOCK_HZ, VideoFrame

    if not os.path.exists(path):
        raise UsageError(f"--source file: {path!r} does not exist")
    src = FileSource(path, loop=args.loop, audio=args.audio, sample_rate=48000, frame_ms=20.0)
    m = _Media()
    m.close = src.close
    if src.has_video:
        assert src.width is not None and src.height is not None
        m.video = (args.width or src.width, args.height or src.height, args.fps or src.fps or 30.0)
    if src.has_audio and args.audio:
        m.audio_channels = src.channels

    def steps() -> Iterator[Step]:
        while (frame := src.read()) is not None:
            if isinstance(frame, VideoFrame):
                t = frame.pts / VIDEO_CLOCK_HZ
            else:
                t = frame.pts / frame.sample_rate
            yield t, functools.partial(_same, frame)

    m.steps = steps()
    return m


def _camera(args: argparse.Namespace, device: str | None) -> _Media:
    from ..media import DeviceSource

    src = DeviceSource("camera", device or None, width=args.width, height=args.height,
                       fps=args.fps or 30.0)
    m = _Media()
    m.close = src.close
    assert src.width is not None and src.height is not None
    m.video = (args.width or src.width, args.height or src.height, args.fps or src.fps or 30.0)

    def steps() -> Iterator[Step]:
        while (frame := src.read()) is not None:
            yield None, functools.partial(_same, frame)

    m.steps = steps()
    return m


def open_source(args: argparse.Namespace) -> _Media:
    """The source named by ``--source``."""
    spec: str = args.source
    if spec == "synthetic":
        return _synthetic(args)
    if spec.startswith("file:"):
        path = spec[5:]
        if not path:
            raise UsageError("--source file:PATH needs a path")
        return _file(args, path)
    if spec == "camera" or spec.startswith("camera:"):
        return _camera(args, spec[7:] if spec.startswith("camera:") else None)
    raise UsageError(f"unknown --source {spec!r}; use synthetic, file:PATH or camera[:DEVICE]")


# -- sending -----------------------------------------------------------------------------------
class _Stream:
    """One outgoing RTP stream's counters and RTCP state."""

    def __init__(self, kind: str, ssrc: int, clock_rate: int, port: int) -> None:
        from ..rtp import SenderStatistics

        self.kind, self.ssrc, self.clock_rate, self.port = kind, ssrc, clock_rate, port
        self.stats = SenderStatistics(ssrc, clock_rate)
        self.last_ts: int | None = None  # RTP timestamp of the last packet sent
        self.last_wall = 0.0  # monotonic s when it was sent
        self.frames = 0
        self.payload_bytes = 0

    def rtp_now(self, now: float) -> int:
        """This stream's RTP clock at monotonic ``now`` (extrapolated from the last packet)."""
        assert self.last_ts is not None
        return (self.last_ts + round((now - self.last_wall) * self.clock_rate)) & 0xFFFF_FFFF


class Sender:
    """Encodes frames, packetizes and sends them; keeps the RTCP side."""

    def __init__(self, args: argparse.Namespace, media: _Media, host: str, port: int) -> None:
        from ..rtp import OpusPacketizer, Vp8Packetizer

        self.host, self.port = host, port
        self.sock = udp_socket(host)
        self.sock.setblocking(False)
        self.cname = f"callpipe-{secrets.token_hex(6)}"
        self.args = args
        self.video: _Stream | None = None
        self.audio: _Stream | None = None
        self.vp8: Vp8Packetizer | None = None
        self.opus: OpusPacketizer | None = None
        self._venc: Any = None
        self._aenc: Any = None
        self.keyframe_requests = 0
        self.keyframes_encoded = 0
        self.send_errors = 0
        self.media = media
        if media.video is not None:
            self.vp8 = Vp8Packetizer(payload_type=96, mtu=args.mtu)
            self.video = _Stream("video", self.vp8.ssrc, 90000, port)
        if media.audio_channels is not None:
            self.opus = OpusPacketizer(payload_type=111)
            self.audio = _Stream("audio", self.opus.ssrc, 48000, port + 2)

    # -- encoders (created on the first frame, when its format is known) --------------------
    def _video_encoder(self) -> Any:
        if self._venc is None:
            from ..codecs import Vp8Encoder

            assert self.media.video is not None
            w, h, fps = self.media.video
            self._venc = Vp8Encoder(
                w, h, self.args.bitrate, fps=max(1, round(fps)),
                keyframe_interval=max(1, round(fps * self.args.keyframe_interval)),
            )
        return self._venc

    def _audio_encoder(self, channels: int) -> Any:
        if self._aenc is None:
            from ..codecs import OpusEncoder

            self._aenc = OpusEncoder(48000, channels, self.args.audio_bitrate,
                                     application="audio")
        return self._aenc

    def _send(self, data: bytes, port: int) -> None:
        try:
            self.sock.sendto(data, (self.host, port))
        except (BlockingIOError, InterruptedError):
            self.send_errors += 1
        except OSError:  # e.g. ECONNREFUSED from an earlier ICMP port unreachable
            self.send_errors += 1

    def send_frame(self, frame: Any) -> None:
        """Encode, packetize and send one video or audio frame."""
        from ..media.frames import VideoFrame

        now = time.monotonic()
        if isinstance(frame, VideoFrame):
            if self.video is None or self.vp8 is None:
                return
            assert self.media.video is not None
            w, h, _ = self.media.video
            if (frame.width, frame.height) != (w, h):
                from ..media.convert import scale

                frame = scale(frame, w, h)
            for ef in self._video_encoder().encode(frame):
                packets = self.vp8.packetize_frame(ef)
                for pkt in packets:
                    self._send(pkt, self.video.port)
                    self.video.stats.on_packet_sent(len(pkt) - 12, len(pkt))
                self.video.frames += 1
                self.video.payload_bytes += len(ef.data)
                self.video.last_ts = (ef.pts + self.vp8.timestamp_offset) & 0xFFFF_FFFF
                self.video.last_wall = now
        else:
            if self.audio is None or self.opus is None:
                return
            enc = self._audio_encoder(frame.samples.shape[1])
            if frame.sample_rate != 48000 or frame.samples.shape[1] != enc.channels:
                return  # cannot happen with our sources (48 kHz, fixed channels)
            ts = self.opus.timestamp
            rtp = self.opus.packetize(enc.encode(frame))
            self.audio.last_ts = ts
            self.audio.last_wall = now
            if rtp is not None:
                self._send(rtp, self.audio.port)
                self.audio.stats.on_packet_sent(len(rtp) - 12, len(rtp))
                self.audio.frames += 1
                self.audio.payload_bytes += len(rtp) - 12

    # -- RTCP --------------------------------------------------------------------------------
    def _streams(self) -> list[_Stream]:
        return [s for s in (self.video, self.audio) if s is not None]

    def send_reports(self, bye: bool = False) -> None:
        """An SR + SDES CNAME (+ BYE) compound for every stream that has sent something."""
        from ..rtp import Bye, SourceDescription, build_compound

        now_m, now_u = time.monotonic(), time.time()
        for s in self._streams():
            if s.last_ts is None:
                continue
            sr = s.stats.sender_report(now_u, s.rtp_now(now_m))
            extra = (Bye((s.ssrc,), b"stream ended"),) if bye else ()
            data = build_compound(sr, SourceDescription.cname(s.ssrc, self.cname), *extra)
            self._send(data, s.port + 1)

    def read_feedback(self) -> None:
        """Read RTCP that came back: receiver reports, PLI/FIR (-> keyframe)."""
        from ..errors import TransportError
        from ..rtp import Fir, Pli, ReceiverReport, SenderReport, is_rtcp, parse_rtcp

        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # ICMP errors surface here on Linux; the next recv goes on
            if not is_rtcp(data):
                continue
            try:
                compound = parse_rtcp(data)
            except TransportError:
                continue
            arrival = time.time()
            for p in compound:
                if isinstance(p, (ReceiverReport, SenderReport)):
                    for block in p.reports:
                        for s in self._streams():
                            s.stats.on_report_block(block, arrival)
                elif isinstance(p, (Pli, Fir)) and self.video is not None:
                    media_ssrcs = (
                        {p.media_ssrc} if isinstance(p, Pli) else {e.ssrc for e in p.entries}
                    )
                    if self.video.ssrc in media_ssrcs and self._venc is not None:
                        self._venc.request_keyframe()
                        self.keyframe_requests += 1

    def close(self) -> None:
        """Close the encoders and the socket."""
        if self._venc is not None and not self._venc.closed:
            self.keyframes_encoded = self._venc.stats.keyframes
        for enc in (self._venc, self._aenc):
            if enc is not None:
                enc.close()
        self.sock.close()

    def stats(self, elapsed: float) -> dict[str, Any]:
        """Final statistics (webrtc-stats ``outbound-rtp`` names per stream)."""
        out: dict[str, Any] = {"durationS": round(elapsed, 3), "cname": self.cname,
                               "keyFrameRequests": self.keyframe_requests,
                               "sendErrors": self.send_errors}
        for s in self._streams():
            st: dict[str, Any] = dict(s.stats.stats())
            st["kind"] = s.kind
            st["port"] = s.port
            st["framesSent" if s.kind == "video" else "opusPacketsSent"] = s.frames
            if s.kind == "video":
                st["keyFramesEncoded"] = self.keyframes_encoded
            out[s.kind] = st
        return out

    def line(self, elapsed: float) -> str:
        """The live status line."""
        parts = [f"{elapsed:6.1f} s"]
        if self.video is not None:
            parts.append(f"video {self.video.frames} frames "
                         f"{kbps(self.video.stats.bytes_sent, elapsed):.0f} kbps")
        if self.audio is not None:
            parts.append(f"audio {self.audio.frames} packets "
                         f"{kbps(self.audio.stats.bytes_sent, elapsed):.0f} kbps")
        if self.keyframe_requests:
            parts.append(f"{self.keyframe_requests} keyframe requests")
        for s in self._streams():
            if s.stats.round_trip_time is not None:
                parts.append(f"{s.kind} rtt {1000 * s.stats.round_trip_time:.1f} ms "
                             f"lost {s.stats.remote_packets_lost}")
        return ", ".join(parts)


def _validate(args: argparse.Namespace) -> None:
    for name, lo, hi in (("width", 64, 16383), ("height", 12, 16383)):
        v = getattr(args, name)
        if v is not None and not lo <= v <= hi:
            raise UsageError(f"--{name} must be {lo}..{hi} pixels, got {v}")
    if args.fps is not None and not 0 < args.fps <= 240:
        raise UsageError(f"--fps must be in (0, 240] frames/s, got {args.fps:g}")
    if not 10 <= args.bitrate <= 100_000:
        raise UsageError(f"--bitrate must be 10..100000 kbps, got {args.bitrate}")
    if not 6 <= args.audio_bitrate <= 510:
        raise UsageError(f"--audio-bitrate must be 6..510 kbps, got {args.audio_bitrate}")
    if not 200 <= args.mtu <= 65000:
        raise UsageError(f"--mtu must be 200..65000 bytes, got {args.mtu}")
    check_output_path(args.sdp, "--sdp")
    check_output_path(args.stats_json, "--stats-json")


def run(args: argparse.Namespace) -> int:
    """Run ``callpipe stream``; exit status 0, or 2 for unusable arguments."""
    from ..media.sources import MediaIOError
    from ..rtp.sdp import SdpError, write_sdp

    host, port = args.to
    progress = Progress("callpipe stream", args.quiet)
    try:
        _validate(args)
        media = open_source(args)
    except (UsageError, MediaIOError) as e:
        progress.message(f"error: {e}")
        return EXIT_USAGE
    try:
        if media.video is None and media.audio_channels is None:
            raise UsageError("the source has nothing to send (no video, and audio is off or "
                             "missing)")
        need = port + (3 if media.audio_channels is not None else 1)
        if need > 65535:
            raise UsageError(f"--to port {port} leaves no room for RTCP/audio ports (up to "
                             f"{need}); use a port <= {port - (need - 65535)}")
        if args.sdp:
            text = write_sdp(
                host,
                port if media.video is not None else None,
                port + 2 if media.audio_channels is not None else None,
                framerate=media.video[2] if media.video is not None else None,
                stereo=media.audio_channels == 2,
            )
            try:
                with open(args.sdp, "w", encoding="utf-8", newline="") as f:
                    f.write(text)
            except OSError as e:
                raise UsageError(f"--sdp: cannot write {args.sdp!r}: {e}") from None
    except (UsageError, SdpError) as e:
        media.close()
        progress.message(f"error: {e}")
        return EXIT_USAGE
    return _stream(args, media, host, port, progress)


def _stream(args: argparse.Namespace, media: _Media, host: str, port: int,
            progress: Progress) -> int:
    sender = Sender(args, media, host, port)
    where = f"[{host}]" if ":" in host else host
    desc = []
    if sender.video is not None and media.video is not None:
        w, h, fps = media.video
        desc.append(f"VP8 {w}x{h} {fps:g} fps {args.bitrate} kbps -> {where}:{port}")
    if sender.audio is not None:
        desc.append(f"Opus {media.audio_channels} ch {args.audio_bitrate} kbps -> "
                    f"{where}:{port + 2}")
    progress.message("; ".join(desc) + (f" (SDP: {args.sdp})" if args.sdp else ""))
    start = time.monotonic()
    t0: float | None = None  # monotonic time of media time 0
    next_sr = start + 0.5
    reason = "source ended"
    with StopFlag() as stop:
        try:
            for t, make in media.steps:
                now = time.monotonic()
                if stop.event.is_set():
                    break
                if t is not None:
                    if t0 is None:
                        t0 = now - t
                    due = t0 + t
                    if args.duration is not None and due - start >= args.duration:
                        reason = f"{args.duration:g} s sent"
                        break
                    if stop.sleep(due - now):
                        break
                elif args.duration is not None and now - start >= args.duration:
                    reason = f"{args.duration:g} s sent"
                    break
                sender.send_frame(make())
                sender.read_feedback()
                now = time.monotonic()
                if now >= next_sr:
                    sender.send_reports()
                    next_sr = now + 1.0
                if progress.due():
                    progress.show(sender.line(now - start))
        except CallpipeError as e:
            reason = f"stopped on an error: {e}"
        finally:
            if stop.reason is not None:
                reason = stop.reason
            elapsed = time.monotonic() - start
            try:
                sender.send_reports(bye=True)
            finally:
                sender.close()
                media.close()
    progress.end()
    stats = sender.stats(elapsed)
    if args.stats_json:
        with open(args.stats_json, "w", encoding="utf-8") as f:
            json.dump(stats, f, indent=2)
            f.write("\n")
    progress.message(f"{reason}: {sender.line(elapsed).lstrip()}")
    return 1 if reason.startswith("stopped on an error") else 0
