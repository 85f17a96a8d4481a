"""``callpipe receive``: receive one plain RTP stream (VP8 or Opus), decode it, record it, and
report webrtc-stats.

Works with any standard sender: ``ffmpeg -re -i in.mp4 -c:v libvpx -f rtp rtp://HOST:PORT``,
GStreamer's ``rtpvp8pay`` / ``rtpopuspay``, or ``callpipe stream``.  The payload type is taken
from ``--sdp`` when given, else from the first packet; the SSRC is the first packet's.  RTCP
is read on ``PORT+1`` (and on ``PORT`` when multiplexed): sender reports feed LSR/DLSR, and a
BYE from the sender ends the run (unless ``--ignore-bye``).  Receiver reports go back to where
the sender's RTCP came from once a second, and a PLI asks for a keyframe when the VP8 decoder
needs one.

Video: :class:`~callpipe.rtp.vp8.Vp8FrameAssembler` -> :class:`~callpipe.codecs.Vp8Decoder`.
Audio: :class:`~callpipe.rtp.opus.OpusDepacketizer` -> :class:`~callpipe.codecs.OpusDecoder`
(lost packets concealed).  ``--record`` stores the received VP8 frames / Opus packets as they
are (no re-encoding) in WebM or Matroska.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import socket
import sys
import time
from typing import Any

import numpy as np

from ..errors import CallpipeError, CodecError, TransportError
from .stream import (
    EXIT_USAGE,
    Progress,
    StopFlag,
    UsageError,
    check_output_path,
    endpoint,
    kbps,
    positive_seconds,
    udp_socket,
)

CODECS = {"vp8": ("video", "VP8", 90000), "opus": ("audio", "opus", 48000)}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``callpipe receive``."""
    p = sub.add_parser(
        "receive",
        help="receive a plain RTP stream (VP8 or Opus, e.g. from ffmpeg -f rtp), decode, "
        "record and report stats",
        description="Listen for one standard, unencrypted RTP stream -- VP8 (RFC 7741) or "
        "Opus (RFC 7587) -- as sent by ffmpeg, GStreamer or callpipe stream; depacketize, "
        "decode, optionally record it untouched to WebM, and write webrtc-stats "
        "(framesDecoded, packetsLost, jitter, ...). RTCP is read on PORT+1; a BYE from the "
        "sender, --duration, Ctrl-C or SIGTERM ends the run cleanly with a summary. Exit "
        "status 0, 1 when no RTP arrived, 2 for unusable arguments.",
        epilog="Example: callpipe receive --listen 127.0.0.1:5004 --codec vp8 --record r.webm "
        "--stats-json st.json & ffmpeg -re -f lavfi -i testsrc2 -t 5 -c:v libvpx -f rtp "
        "rtp://127.0.0.1:5004",
    )
    p.add_argument("--listen", type=endpoint, metavar="HOST:PORT",
                   help="address and RTP port to listen on; RTCP on PORT+1 (default: the "
                   "address and port of the --sdp stream)")
    p.add_argument("--codec", choices=sorted(CODECS),
                   help="payload: vp8 (video, 90 kHz) or opus (audio, 48 kHz) (default: the "
                   "--sdp stream's, when it has only one)")
    p.add_argument("--sdp", metavar="FILE",
                   help="SDP describing the stream: payload type (and port/address if "
                   "--listen is not given) come from it")
    p.add_argument("--record", metavar="OUT.webm",
                   help="record the stream without re-encoding (.webm, .mkv or .mka)")
    p.add_argument("--stats-json", metavar="FILE", help="write the final statistics (JSON) here")
    p.add_argument("--duration", type=positive_seconds, metavar="S",
                   help="stop after S seconds (default: at the sender's BYE or Ctrl-C)")
    p.add_argument("--payload-type", type=int, metavar="PT",
                   help="accept only this RTP payload type, 0..127 (default: from --sdp, "
                   "else the first packet's)")
    p.add_argument("--fps", type=float, metavar="HZ",
                   help="VP8: nominal frame rate in frames/s for the recording (default: the "
                   "SDP's a=framerate, else 30)")
    p.add_argument("--idle-timeout", type=positive_seconds, metavar="S",
                   help="stop when no RTP has arrived for S seconds after the first packet "
                   "(senders like ffmpeg end without an RTCP BYE)")
    p.add_argument("--ignore-bye", action="store_true",
                   help="keep listening after the sender's RTCP BYE")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)
    return p


# -- the receiving side of one stream ----------------------------------------------------------
class Receiver:
    """RTP in, decoded media and statistics out, for one SSRC of one codec."""

    def __init__(self, codec: str, payload_type: int | None, record: str | None,
                 fps: float) -> None:
        self.codec = codec
        self.kind, self.encoding, self.clock_rate = CODECS[codec]
        self.payload_type = payload_type
        self.record_path, self.fps = record, fps
        self.ssrc: int | None = None
        self.stats: Any = None  # ReceiverStatistics once the first packet is in
        self.recorder: Any = None
        self.invalid = 0  # not RTP, or unusable payloads
        self.foreign = 0  # other payload types / SSRCs
        # video
        self.assembler: Any = None
        self.vdec: Any = None
        self.frames_received = 0
        self.frames_decoded = 0
        self.keyframes_decoded = 0
        self.frames_dropped = 0
        self.decode_errors = 0
        self.frame_losses = 0
        self.width = self.height = 0
        self._last_video_ts: int | None = None
        self.frames_recorded = 0
        self.pli_count = 0
        self._broken = False  # a gap broke the reference chain: wait for a keyframe
        self._first_decode: float | None = None
        self._last_decode = 0.0
        self.last_packet: float | None = None  # monotonic s of the last accepted packet
        self._line_bytes, self._line_t = 0, 0.0
        # audio
        self.depacketizer: Any = None
        self.adec: Any = None
        self.channels = 0
        self.samples_received = 0  # decoded + concealed, per channel
        self.samples_decoded = 0
        self.concealed = 0
        self.concealment_events = 0
        self.audio_energy = 0.0
        self.samples_duration = 0.0
        self._first_audio_ts: int | None = None
        self._last_audio_pts: int | None = None
        self.opus_packets = 0

    # -- packets ---------------------------------------------------------------------------
    def push(self, data: bytes, arrival: float) -> None:
        """One datagram from the RTP port (arrival: monotonic s)."""
        from ..rtp import ReceiverStatistics, RtpPacket

        try:
            p = RtpPacket.parse(data)
        except TransportError:
            self.invalid += 1
            return
        if self.payload_type is None:
            self.payload_type = p.payload_type
        if p.payload_type != self.payload_type:
            self.foreign += 1
            return
        if self.ssrc is None:
            self.ssrc = p.ssrc
            self.stats = ReceiverStatistics(p.ssrc, self.clock_rate)
        elif p.ssrc != self.ssrc:
            self.foreign += 1
            return
        self.stats.on_packet(p.sequence_number, p.timestamp, arrival, size=len(data))
        self.last_packet = arrival
        if self.kind == "video":
            self._video(data, arrival)
        else:
            self._audio(p)

    def _video(self, data: bytes, arrival: float) -> None:
        from ..rtp import Vp8FrameAssembler

        if self.assembler is None:
            self.assembler = Vp8FrameAssembler(ssrc=self.ssrc)
        for frame in self.assembler.push(data, arrival * 1000):
            self._video_frame(frame)

    def tick(self, now: float) -> None:
        """Let the assembler give up on old gaps (now: monotonic s)."""
        if self.assembler is not None:
            for frame in self.assembler.advance(now * 1000):
                self._video_frame(frame)

    def _video_frame(self, frame: Any) -> None:
        from ..codecs import Vp8Decoder

        self.frames_received += 1
        data = frame.data
        if not data:
            self.frames_dropped += 1
            return
        keyframe = frame.keyframe if frame.keyframe is not None else (data[0] & 1) == 0
        if self.vdec is None:
            self.vdec = Vp8Decoder()
        if not frame.continuous and not keyframe:
            # frames were lost before this one: the decoder's references are stale, so
            # everything up to the next keyframe would decode to a damaged picture
            self._broken = True
        if self.needs_keyframe and not keyframe:
            self.frames_dropped += 1  # undecodable until the next keyframe (PLI sent)
            return
        try:
            picture = self.vdec.decode(data, pts=frame.extended_timestamp)
        except CodecError:
            self.decode_errors += 1
            self.frames_dropped += 1
            return
        if picture is not None:
            now = time.monotonic()
            if self._first_decode is None:
                self._first_decode = now
            self._last_decode = now
            self.frames_decoded += 1
            self.keyframes_decoded += bool(keyframe)
            if keyframe:
                self._broken = False
            self.width, self.height = picture.width, picture.height
        self._record_video(data, frame.extended_timestamp, keyframe)

    @property
    def needs_keyframe(self) -> bool:
        """True while video frames cannot be decoded until a keyframe arrives (then a PLI
        goes to the sender)."""
        return self._broken or (self.vdec is not None and self.vdec.needs_keyframe)

    def _record_video(self, data: bytes, ts: int, keyframe: bool) -> None:
        if self.record_path is None:
            return
        if self._last_video_ts is not None and ts <= self._last_video_ts:
            return  # a frame out of timestamp order cannot be muxed
        if self.recorder is None:
            if not keyframe or not self.width:
                return
            from ..media import Recorder

            self.recorder = Recorder(self.record_path, video=(self.width, self.height, self.fps))
        self._last_video_ts = ts
        if self.recorder.write_video(data, pts=ts, keyframe=keyframe):
            self.frames_recorded += 1

    def _audio(self, p: Any) -> None:
        from ..codecs import OpusDecoder
        from ..rtp import OpusDepacketizer

        if self.depacketizer is None:
            self.depacketizer = OpusDepacketizer(self.ssrc)
        try:
            f = self.depacketizer.push(p)
        except TransportError:
            self.invalid += 1
            return
        if f is None or f.late:
            return  # a duplicate, or too late to play
        self.opus_packets += 1
        if self.adec is None:
            self.channels = 2 if f.data[0] & 0x04 else 1  # the TOC's stereo flag
            self.adec = OpusDecoder(48000, self.channels)
        if f.lost:
            self.concealment_events += 1
            missing = min(f.lost * f.samples, f.gap_samples, 48000)  # conceal up to 1 s
            while missing > 0:
                n = min(missing, 5760)
                n -= n % 120
                if n <= 0:
                    break
                try:
                    pcm = self.adec.decode(None, duration_ms=n / 48)
                except CodecError:
                    break
                self.concealed += pcm.samples.shape[0]
                self._account(pcm.samples)
                missing -= n
        try:
            pcm = self.adec.decode(f.data)
        except CodecError:
            self.invalid += 1
            return
        self.samples_decoded += pcm.samples.shape[0]
        self._account(pcm.samples)
        self._record_audio(f.data, f.timestamp)

    def _account(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        self.samples_received += n
        if n:
            # webrtc-stats totalAudioEnergy: sum of (level ** 2) * duration, level in 0..1
            level = float(np.abs(samples).max()) / 32767
            self.audio_energy += level * level * n / 48000
            self.samples_duration += n / 48000

    def _record_audio(self, data: bytes, ts: int) -> None:
        if self.record_path is None:
            return
        if self._first_audio_ts is None:
            self._first_audio_ts = ts
        pts = ts - self._first_audio_ts
        if self._last_audio_pts is not None and pts <= self._last_audio_pts:
            return
        if self.recorder is None:
            from ..media import Recorder

            self.recorder = Recorder(self.record_path, audio=(48000, self.channels))
        self._last_audio_pts = pts
        self.recorder.write_audio(data, pts=pts)

    # -- the end -----------------------------------------------------------------------------
    def finish(self) -> None:
        """Decode what the assembler still holds; close decoders and the recording."""
        try:
            if self.assembler is not None and not self.assembler.closed:
                for frame in self.assembler.flush():
                    self._video_frame(frame)
                self.frame_losses += len(self.assembler.take_losses())
        finally:
            for obj in (self.assembler, self.vdec, self.adec, self.recorder):
                if obj is not None:
                    obj.close()

    def losses(self) -> None:
        """Count frame losses the assembler reported."""
        if self.assembler is not None:
            self.frame_losses += len(self.assembler.take_losses())

    def _fps(self) -> float:
        """Decoded frames per second between the first and the last decoded frame."""
        if self._first_decode is None or self.frames_decoded < 2:
            return 0.0
        span = self._last_decode - self._first_decode
        return round((self.frames_decoded - 1) / span, 2) if span > 0 else 0.0

    def report(self, elapsed: float) -> dict[str, Any]:
        """webrtc-stats ``inbound-rtp`` fields (and a few of callpipe's own)."""
        out: dict[str, Any] = {
            "type": "inbound-rtp",
            "kind": self.kind,
            "codec": self.encoding,
            "clockRate": self.clock_rate,
            "payloadType": self.payload_type,
            "ssrc": self.ssrc,
            "packetsReceived": 0,
            "packetsLost": 0,
            "jitter": 0.0,
            "bytesReceived": 0,
        }
        if self.stats is not None:
            st = self.stats.stats()
            for k in ("packetsReceived", "packetsLost", "jitter", "bytesReceived"):
                out[k] = st[k]
        out["packetsInvalid"] = self.invalid
        out["packetsOtherStream"] = self.foreign
        if self.kind == "video":
            out.update(
                framesReceived=self.frames_received,
                framesDecoded=self.frames_decoded,
                keyFramesDecoded=self.keyframes_decoded,
                framesDropped=self.frames_dropped,
                decodeErrors=self.decode_errors,
                pliCount=self.pli_count,
                frameLosses=self.frame_losses,
                frameWidth=self.width,
                frameHeight=self.height,
                framesPerSecond=self._fps(),
                framesRecorded=self.frames_recorded,
            )
        else:
            out.update(
                opusPacketsDecoded=self.opus_packets,
                channels=self.channels,
                totalSamplesReceived=self.samples_received,
                totalSamplesDecoded=self.samples_decoded,
                concealedSamples=self.concealed,
                concealmentEvents=self.concealment_events,
                totalAudioEnergy=self.audio_energy,
                totalSamplesDuration=self.samples_duration,
            )
        out["durationS"] = round(elapsed, 3)
        if self.record_path is not None:
            out["recording"] = self.record_path if self.recorder is not None else None
        return out

    def line(self, elapsed: float) -> str:
        """The live status line."""
        st = self.report(elapsed)
        rate = kbps(st["bytesReceived"] - self._line_bytes, elapsed - self._line_t)
        self._line_bytes, self._line_t = st["bytesReceived"], elapsed
        parts = [f"{elapsed:6.1f} s", f"packets {st['packetsReceived']} lost {st['packetsLost']}",
                 f"jitter {1000 * st['jitter']:.1f} ms", f"{rate:.0f} kbps"]
        if self.kind == "video":
            parts.append(f"frames {self.frames_received} decoded {self.frames_decoded}"
                         + (f" {self.width}x{self.height}" if self.width else ""))
        else:
            parts.append(f"audio {self.samples_received / 48000:.2f} s decoded, "
                         f"{self.concealed / 48000:.2f} s concealed")
        return ", ".join(parts)


# -- setup -------------------------------------------------------------------------------------
def _resolve(args: argparse.Namespace) -> tuple[str, int, str, int | None, float]:
    """(host, port, codec, payload type, fps) from the arguments and the SDP."""
    from ..rtp.sdp import read_sdp_file

    codec: str | None = args.codec
    pt: int | None = args.payload_type
    fps: float = args.fps or 30.0
    listen: tuple[str, int] | None = args.listen
    if pt is not None and not 0 <= pt <= 127:
        raise UsageError(f"--payload-type must be 0..127, got {pt}")
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise UsageError(f"--fps must be in (0, 1000] frames/s, got {args.fps:g}")
    if args.sdp is not None:
        sdp = read_sdp_file(args.sdp)
        kinds = [CODECS[codec][0]] if codec else ["video", "audio"]
        found = [(m, m.find(CODECS[c][1])) for m in sdp.media for c in CODECS
                 if m.media in kinds and CODECS[c][0] == m.media]
        found = [(m, r) for m, r in found if r is not None and m.port]
        if not found:
            want = f"a {codec} stream" if codec else "a VP8 or Opus stream"
            raise UsageError(f"--sdp {args.sdp}: no {want} in it")
        if codec is None and len(found) > 1:
            raise UsageError(f"--sdp {args.sdp} has {len(found)} streams; pick one with --codec")
        media, rtpmap = found[0]
        assert rtpmap is not None
        codec = "vp8" if media.media == "video" else "opus"
        if pt is None:
            pt = rtpmap.payload_type
        if args.fps is None and media.framerate is not None:
            fps = media.framerate
        if listen is None:
            try:
                host = socket.getaddrinfo(sdp.address_of(media), media.port,
                                          type=socket.SOCK_DGRAM)[0][4][0]
            except OSError as e:
                raise UsageError(f"--sdp: cannot use its address ({e}); give --listen") from None
            listen = (str(host), media.port)
    if codec is None:
        raise UsageError("--codec vp8|opus is required (or an --sdp naming the stream)")
    if listen is None:
        raise UsageError("--listen HOST:PORT is required (or an --sdp naming the port)")
    host, port = listen
    if args.record is not None:
        ext = os.path.splitext(args.record)[1].lower()
        if ext not in (".webm", ".mkv", ".mka"):
            raise UsageError(f"--record must end in .webm, .mkv or .mka, got {args.record!r}")
        if ext == ".mka" and codec == "vp8":
            raise UsageError("--record: .mka is audio-only; use .webm or .mkv for VP8")
    check_output_path(args.record, "--record")
    check_output_path(args.stats_json, "--stats-json")
    return host, port, codec, pt, fps


def _bind(host: str, port: int, what: str) -> socket.socket:
    sock = udp_socket(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise UsageError(
            f"cannot listen for {what} on {host} port {port}: {e.strerror or e}"
        ) from None
    sock.setblocking(False)
    return sock


def run(args: argparse.Namespace) -> int:
    """Run ``callpipe receive``; exit status 0, 1 when nothing arrived, 2 for bad arguments."""
    from ..rtp.sdp import SdpError

    progress = Progress("callpipe receive", args.quiet)
    rtcp: socket.socket | None = None
    try:
        host, port, codec, pt, fps = _resolve(args)
        rtp = _bind(host, port, "RTP")
    except (UsageError, SdpError) as e:
        progress.message(f"error: {e}")
        return EXIT_USAGE
    if port < 65535:
        try:
            rtcp = _bind(host, port + 1, "RTCP")
        except UsageError as e:
            progress.message(f"warning: {e}; RTCP ignored")
    where = f"[{host}]" if ":" in host else host
    progress.message(f"listening for {codec.upper()} RTP on {where}:{port}"
                     + (f" (payload type {pt})" if pt is not None else "")
                     + (f", recording to {args.record}" if args.record else ""))
    receiver = Receiver(codec, pt, args.record, fps)
    try:
        reason, elapsed = _loop(args, receiver, rtp, rtcp, progress)
    finally:
        rtp.close()
        if rtcp is not None:
            rtcp.close()
    progress.end()
    stats = receiver.report(elapsed)
    if args.stats_json:
        with open(args.stats_json, "w", encoding="utf-8") as f:
            json.dump(_clean(stats), f, indent=2)
            f.write("\n")
    print(f"callpipe receive: {reason}")
    print(_summary(stats))
    sys.stdout.flush()
    if reason.startswith("stopped on an error"):
        return 1
    return 0 if stats["packetsReceived"] else 1


class _Rtcp:
    """The receiver's RTCP side: SR/BYE in, RR (and PLI) out."""

    def __init__(self, receiver: Receiver, sock: socket.socket | None) -> None:
        import secrets

        self.receiver, self.sock = receiver, sock
        self.ssrc = secrets.randbits(32)
        self.cname = f"callpipe-{secrets.token_hex(6)}"
        self.peer: Any = None
        self.bye = False
        self.next_rr = 0.0
        self.last_pli = -10.0

    def take(self, data: bytes, addr: Any, now: float) -> None:
        from ..rtp import Bye, SenderReport, parse_rtcp

        try:
            compound = parse_rtcp(data)
        except TransportError:
            self.receiver.invalid += 1
            return
        r = self.receiver
        for p in compound:
            if isinstance(p, SenderReport) and p.ssrc == r.ssrc and r.stats is not None:
                r.stats.on_sender_report(p, now)
                self.peer = addr
            elif isinstance(p, Bye) and r.ssrc is not None and r.ssrc in p.ssrcs:
                self.bye = True

    def tick(self, now: float) -> None:
        from ..rtp import Pli, ReceiverReport, SourceDescription, build_compound

        r = self.receiver
        if self.sock is None or self.peer is None or r.stats is None:
            return
        extra: list[Any] = []
        if (r.kind == "video" and r.needs_keyframe and r.frames_received
                and now - self.last_pli >= 0.5):
            extra.append(Pli(self.ssrc, r.stats.ssrc))
            self.last_pli = now
            r.pli_count += 1
        if now < self.next_rr and not extra:
            return
        self.next_rr = now + 1.0
        rr = ReceiverReport(self.ssrc, (r.stats.report_block(now),))
        try:
            self.sock.sendto(build_compound(rr, SourceDescription.cname(self.ssrc, self.cname),
                                            *extra), self.peer)
        except OSError:
            pass


def _loop(args: argparse.Namespace, receiver: Receiver, rtp: socket.socket,
          rtcp_sock: socket.socket | None, progress: Progress) -> tuple[str, float]:
    from ..rtp import is_rtcp

    rtcp = _Rtcp(receiver, rtcp_sock)
    socks = [rtp] + ([rtcp_sock] if rtcp_sock is not None else [])
    start = time.monotonic()
    deadline = start + args.duration if args.duration is not None else math.inf
    reason = "stopped"
    with StopFlag() as stop:
        try:
            while True:
                now = time.monotonic()
                if stop.event.is_set():
                    break
                if now >= deadline:
                    reason = f"{args.duration:g} s elapsed"
                    break
                if rtcp.bye and not args.ignore_bye:
                    reason = "the sender said BYE"
                    break
                last = receiver.last_packet
                if args.idle_timeout is not None and last is not None \
                        and now - last >= args.idle_timeout:
                    reason = f"no RTP for {args.idle_timeout:g} s"
                    break
                try:
                    ready, _, _ = select.select(socks, [], [], min(0.1, deadline - now))
                except InterruptedError:
                    continue
                for s in ready:
                    while True:
                        try:
                            data, addr = s.recvfrom(65536)
                        except (BlockingIOError, InterruptedError):
                            break
                        except OSError:
                            continue
                        arrival = time.monotonic()
                        if is_rtcp(data):
                            rtcp.take(data, addr, arrival)
                        elif s is rtp:
                            receiver.push(data, arrival)
                now = time.monotonic()
                receiver.tick(now)
                receiver.losses()
                rtcp.tick(now)
                if progress.due():
                    progress.show(receiver.line(now - start))
        except CallpipeError as e:
            reason = f"stopped on an error: {e}"
        finally:
            if stop.reason is not None:
                reason = stop.reason
            elapsed = time.monotonic() - start
            receiver.finish()
    return reason, elapsed


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    return obj


def _summary(st: dict[str, Any]) -> str:
    pt = st["payloadType"] if st["payloadType"] is not None else "-"
    lines = [
        f"  {st['codec']} payload type {pt}, SSRC "
        + (f"{st['ssrc']:#010x}" if st["ssrc"] is not None else "none (no RTP arrived)"),
        f"  packets received {st['packetsReceived']}, lost {st['packetsLost']}, "
        f"{st['bytesReceived']} bytes, jitter {1000 * st['jitter']:.2f} ms",
    ]
    if st["kind"] == "video":
        lines.append(
            f"  frames received {st['framesReceived']}, decoded {st['framesDecoded']} "
            f"({st['keyFramesDecoded']} keyframes), dropped {st['framesDropped']}, "
            f"{st['frameWidth']}x{st['frameHeight']}"
        )
    else:
        lines.append(
            f"  audio decoded {st['totalSamplesDecoded'] / 48000:.2f} s "
            f"({st['opusPacketsDecoded']} packets, {st['channels']} ch), concealed "
            f"{st['concealedSamples'] / 48000:.2f} s in {st['concealmentEvents']} events"
        )
    if st.get("recording"):
        lines.append(f"  recorded to {st['recording']}")
    return "\n".join(lines)
