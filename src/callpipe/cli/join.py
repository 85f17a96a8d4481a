"""``callpipe join``: take part in a group call through an SFU, end-to-end encrypted.

Sends video from a camera, a file or the synthetic test source (plus audio), receives every
other participant, and shows a live stats table with the group's verification emoji on
stderr.  Optionally records a grid of everyone else (``--record out.webm``), writes the last
grid picture (``--grid out.png``), streams ``stats()`` as JSON lines (``--stats-jsonl``) and a
final summary (``--summary``).

Exit status: 0 after ``--duration`` or Ctrl-C / SIGTERM; 1 when the join fails (bad token,
unreachable server, a device that cannot be opened) or the call ends on its own; 2 for bad
arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import CallpipeError
from ._live import LiveBlock, ascii_label, format_table, num, received_rows
from .token import SECRET_ENV

#: frames per second of the grid recording
RECORD_FPS = 15.0
#: the grid canvas (recording and PNG), pixels
DEFAULT_GRID_SIZE = (640, 480)


# -- arguments -------------------------------------------------------------------------------
def positive(kind: type[int] | type[float], unit: str) -> Any:
    """An argparse ``type`` accepting numbers > 0 of ``kind``; ``unit`` names the unit in
    the error message."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'} ({unit})"
            ) from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0 {unit}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT (pixels)") from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"{text}: width and height must be 16..4096 pixels")
    return w, h


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``callpipe join``."""
    p = sub.add_parser(
        "join",
        help="join a group call through an SFU (E2EE): send camera/file/synthetic video and "
        "audio, show live stats and the verification emoji",
        description="Join a room of a callpipe SFU (callpipe sfu) as one participant of an "
        "end-to-end encrypted group call. Video comes from --camera, --file or the synthetic "
        "test source (default); audio is the file's audio track, --microphone, or the "
        "synthetic tone. The live stats table (per remote stream: fps, kbit/s, packets lost, "
        "jitter-buffer delay, glass-to-glass latency) and the group's verification emoji go "
        "to stderr; compare the emoji with the others out of band. Runs for --duration "
        "seconds or until Ctrl-C / SIGTERM. Access needs a join token: --token, or one "
        f"issued here from --secret / ${SECRET_ENV} (the SFU's secret).",
    )
    p.add_argument("url", metavar="URL", help="the SFU's signaling URL: ws://HOST:PORT or wss://")
    p.add_argument("--room", required=True, help="the room to join")
    cred = p.add_mutually_exclusive_group()
    cred.add_argument("--token", help="a join token for the room (from callpipe token)")
    cred.add_argument(
        "--secret",
        help=f"issue a token here with the SFU's secret (default: ${SECRET_ENV} when no --token)",
    )
    p.add_argument("--name", help="display name (default: the token's, else $USER)")
    p.add_argument("--cafile", help="PEM file of certificates to trust for a wss:// SFU")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--camera",
        nargs="?",
        const="",
        default=None,
        metavar="DEVICE",
        help="send a camera (default device: the first one, e.g. /dev/video0)",
    )
    src.add_argument("--file", metavar="PATH", help="send a media file (looped, real time)")
    src.add_argument(
        "--synthetic",
        action="store_true",
        help="send the synthetic moving test picture with frame stamps and a stamped tone "
        "(the default)",
    )
    p.add_argument(
        "--microphone",
        nargs="?",
        const="",
        default=None,
        metavar="DEVICE",
        help="send a microphone as audio (default device: the system default)",
    )
    p.add_argument("--no-audio", action="store_true", help="send no audio")
    p.add_argument("--no-video", action="store_true", help="send no video")
    p.add_argument(
        "--width", type=positive(int, "pixels"), default=320,
        help="video width in pixels (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--height", type=positive(int, "pixels"), default=240,
        help="video height in pixels (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--fps", type=positive(float, "frames/s"), default=30.0,
        help="video frame rate in frames/s (default: %(default)g)",
    )  # fmt: skip
    p.add_argument(
        "--bitrate", type=positive(int, "kbps"), default=500,
        help="video bitrate in kbit/s (default: %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--audio-bitrate", type=positive(float, "kbps"), default=32.0,
        help="Opus bitrate in kbit/s (default: %(default)g)",
    )  # fmt: skip
    p.add_argument(
        "--duration", type=positive(float, "s"), default=None,
        help="leave after this many s (default: run until Ctrl-C or SIGTERM)",
    )  # fmt: skip
    p.add_argument(
        "--join-timeout", type=positive(float, "s"), default=20.0,
        help="give up joining after this many s (default: %(default)g)",
    )  # fmt: skip
    p.add_argument(
        "--record",
        metavar="OUT.webm",
        help="record a grid of every other participant (VP8, WebM or .mkv) at "
        f"{RECORD_FPS:g} frames/s",
    )
    p.add_argument("--grid", metavar="OUT.png", help="write the grid picture at the end (PNG)")
    p.add_argument(
        "--grid-size", type=_size, default=DEFAULT_GRID_SIZE, metavar="WxH",
        help="grid canvas size in pixels (default: {}x{})".format(*DEFAULT_GRID_SIZE),
    )  # fmt: skip
    p.add_argument(
        "--stats-interval", type=positive(float, "s"), default=1.0,
        help="seconds between stats updates (default: %(default)g)",
    )  # fmt: skip
    p.add_argument(
        "--stats-jsonl",
        metavar="PATH|-",
        help="write one JSON line of stats() plus timestamps per interval ('-': stdout)",
    )
    p.add_argument("--summary", metavar="PATH", help="write a JSON summary at the end")
    p.add_argument("-q", "--quiet", action="store_true", help="no live table (events only)")
    p.set_defaults(func=run, _parser=p)
    return p


@dataclass
class _Setup:
    """Everything decided before connecting."""

    url: str
    room: str
    token: str
    name: str | None
    ssl: ssl.SSLContext | None
    config: Any
    video: Any = None
    audio: Any = None
    closers: list[Any] = field(default_factory=list)

    def close_sources(self) -> None:
        for obj in self.closers:
            with contextlib.suppress(Exception):
                obj.close()


def _check_args(args: argparse.Namespace) -> None:
    """Argument errors the parser cannot see: exit 2 with a message."""
    parser: argparse.ArgumentParser = args._parser
    if not args.url.startswith(("ws://", "wss://")):
        parser.error(f"URL must start with ws:// or wss://, got {args.url!r}")
    from ..sfu.protocol import ProtocolError, check_room_name
    from ..sfu.token import TokenError, peek_token

    try:
        check_room_name(args.room)
    except ProtocolError as e:
        parser.error(f"--room: {e.detail}")
    if args.token is not None:
        try:
            peek_token(args.token)
        except TokenError as e:
            parser.error(f"--token is not a join token: {e}")
    elif not (args.secret or os.environ.get(SECRET_ENV)):
        parser.error(f"give --token, or --secret (or set {SECRET_ENV}) to issue one here")
    if args.cafile is not None and not args.url.startswith("wss://"):
        parser.error("--cafile is for wss:// URLs")
    if args.no_video and (args.camera is not None or args.file is not None):
        parser.error("--no-video with --camera/--file: nothing would be sent from them")
    if args.no_audio and args.microphone is not None:
        parser.error("--no-audio and --microphone contradict each other")
    if args.record is not None:
        from ..media.sinks import RECORDER_FORMATS

        ext = os.path.splitext(args.record)[1].lower()
        if ext not in RECORDER_FORMATS or ext == ".mka":
            parser.error(f"--record needs a .webm or .mkv file name, got {args.record!r}")
    if args.grid is not None and not args.grid.lower().endswith(".png"):
        parser.error(f"--grid needs a .png file name, got {args.grid!r}")
    if args.camera is None and args.file is None and not args.no_video:
        from ..media.synthetic import stamp_block_size

        try:
            stamp_block_size(args.width, args.height)
        except CallpipeError as e:
            parser.error(f"--width/--height for the synthetic source: {e}")


def _token(args: argparse.Namespace) -> tuple[str, str | None]:
    """The join token and the display name to ask for."""
    if args.token is not None:
        return args.token, args.name
    from ..sfu.token import issue_token
    from .token import resolve_secret

    name = args.name or os.environ.get("USER") or "guest"
    try:
        return issue_token(resolve_secret(args.secret), args.room, name), name
    except (ValueError, CallpipeError) as e:
        args._parser.error(f"cannot issue a token: {e}")
        raise  # not reached: error() exits


def _ssl(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.url.startswith("wss://"):
        return None
    try:
        return ssl.create_default_context(cafile=args.cafile)
    except (OSError, ssl.SSLError) as e:
        raise CallpipeError(f"cannot load --cafile {args.cafile!r}: {e}") from None


def _setup(args: argparse.Namespace) -> _Setup:
    """Open the sources (errors for missing devices/files here, before connecting)."""
    from ..call.group import GroupCallConfig

    token, name = _token(args)
    width, height, fps = args.width, args.height, args.fps
    setup = _Setup(args.url, args.room, token, name, _ssl(args), None)
    try:
        if not args.no_video:
            if args.camera is not None:
                from ..media.sources import open_device

                cam = open_device(  # PyAV, or the system ffmpeg where PyAV lacks v4l2
                    "camera", args.camera or None, width=width, height=height, fps=fps
                )
                setup.closers.append(cam)
                setup.video = cam
                width = getattr(cam, "width", None) or width
                height = getattr(cam, "height", None) or height
            elif args.file is not None:
                from ..media.sources import FileSource

                probe = FileSource(args.file)
                has_video, has_audio = probe.has_video, probe.has_audio
                width, height = probe.width or width, probe.height or height
                fps = probe.fps or fps
                probe.close()
                if has_video:
                    setup.video = FileSource(args.file, loop=True, realtime=True, audio=False)
                    setup.closers.append(setup.video)
                if has_audio and not args.no_audio and args.microphone is None:
                    setup.audio = FileSource(
                        args.file, loop=True, realtime=True, video=False,
                        sample_rate=48000, channels=1, frame_ms=20.0,
                    )  # fmt: skip
                    setup.closers.append(setup.audio)
            else:
                from ..media.synthetic import SyntheticVideoSource

                setup.video = SyntheticVideoSource(width, height, fps=fps, realtime=True)
        if not args.no_audio and setup.audio is None:
            if args.microphone is not None:
                from ..media.sources import DeviceSource

                setup.audio = DeviceSource(
                    "microphone", args.microphone or None, sample_rate=48000, channels=1
                )
                setup.closers.append(setup.audio)
            elif args.file is None:
                from ..media.synthetic import SyntheticAudioSource

                setup.audio = SyntheticAudioSource(sample_rate=48000, channels=1, frame_ms=20.0)
        setup.config = GroupCallConfig(
            width=int(width),
            height=int(height),
            fps=float(fps),
            video_bitrate_kbps=int(args.bitrate),
            audio_bitrate_kbps=float(args.audio_bitrate),
        )
    except BaseException:
        setup.close_sources()
        raise
    return setup


# -- the grid ---------------------------------------------------------------------------------
class _Grid:
    """The compositor canvas of every remote participant's latest picture, optionally
    VP8-encoded into a recording at a steady rate."""

    def __init__(self, size: tuple[int, int], record: str | None) -> None:
        from ..media.compositor import Compositor

        self.width, self.height = size
        self.compositor = Compositor(self.width, self.height, "grid")
        self.encoder: Any = None
        self.recorder: Any = None
        self.frames = 0
        if record is not None:
            from ..codecs.vp8 import Vp8Encoder
            from ..media.sinks import Recorder

            try:
                self.recorder = Recorder(record, video=(self.width, self.height, RECORD_FPS))
                self.encoder = Vp8Encoder(
                    self.width, self.height, 1000, fps=int(RECORD_FPS),
                    frame_dropping=False, keyframe_interval=int(RECORD_FPS * 5),
                )  # fmt: skip
            except BaseException:
                self.close()
                raise

    def sync(self, participants: dict[str, Any]) -> None:
        """Bring the tiles up to date with the call's participants (event-loop thread)."""
        comp = self.compositor
        for pid in list(comp.participants):
            if pid not in participants:
                comp.remove(pid)
        for pid, p in participants.items():
            comp.add(pid, ascii_label(f"{p.name} ({pid})"))
            comp.update(pid, getattr(p, "latest_frame", None))

    def record_tick(self, pts: int) -> None:
        """Compose and encode one canvas at ``pts`` (90 kHz ticks); a worker thread."""
        canvas = self.compositor.compose(pts)
        for packet in self.encoder.encode(canvas):
            self.recorder.write_video(packet, pts=pts)
        self.frames += 1

    def close(self) -> None:
        for obj in (self.encoder, self.recorder, self.compositor):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()


# -- output -----------------------------------------------------------------------------------
def _emoji_text(emoji: Any) -> str:
    if not emoji:
        return "(pending)"
    return " ".join(str(e) for e in emoji)


def _sent_text(sent: dict[str, Any]) -> str:
    parts = []
    v, a = sent.get("video"), sent.get("audio")
    if isinstance(v, dict):
        state = "" if v.get("enabled", True) else " (off)"
        parts.append(
            f"video {num(v.get('bitrateKbps'))} kbps {num(v.get('framesPerSecond'), 1)} fps{state}"
        )
    if isinstance(a, dict):
        parts.append(f"audio {num(a.get('bitrateKbps'))} kbps")
    return ", ".join(parts) or "nothing"


def stats_lines(stats: dict[str, Any], tty: bool, elapsed_s: float) -> list[str]:
    """The live display for one ``stats()`` snapshot: a table (terminal) or one line (log).

    :param stats: :meth:`GroupCall.stats` output.
    :param tty: a multi-line table (True) or a single line (False).
    :param elapsed_s: time in the call, s.
    """
    emoji = _emoji_text(stats.get("emoji"))
    height = stats.get("rosterHeight")
    head = (
        f"[{elapsed_s:5.1f} s] {stats.get('name')} ({stats.get('id')})  emoji {emoji}  "
        f"roster height {height}  sending {_sent_text(stats.get('sent') or {})}"
    )
    rows = received_rows(stats.get("received") or {})
    if not tty:
        cells = []
        for pid, name, s in rows:
            if s["kind"] == "video":
                cells.append(
                    f"{name} ({pid}) video {num(s.get('framesPerSecond'), 1)} fps "
                    f"{num(s.get('bitrateKbps'))} kbps lost {num(s.get('packetsLost'))} "
                    f"jb {num(s.get('jitterBufferDelayMs'))} ms "
                    f"lat {num(s.get('latencyMsP50'))} ms"
                )
            else:
                cells.append(
                    f"audio {num(s.get('bitrateKbps'))} kbps lost {num(s.get('packetsLost'))} "
                    f"jb {num(s.get('jitterBufferDelayMs'))} ms"
                )
        return [" | ".join([head, *cells]) if cells else head + " | nobody else here"]
    table = format_table(
        ["from", "stream", "fps", "kbps", "lost", "jb ms", "latency ms"],
        [
            [
                f"{name} ({pid})",
                s["kind"],
                num(s.get("framesPerSecond"), 1) if s["kind"] == "video" else "-",
                num(s.get("bitrateKbps")),
                num(s.get("packetsLost")),
                num(s.get("jitterBufferDelayMs")),
                num(s.get("latencyMsP50")) if s["kind"] == "video" else "-",
            ]
            for pid, name, s in rows
        ],
    )
    lines = [
        f"[{elapsed_s:5.1f} s] {stats.get('name')} ({stats.get('id')}) sending "
        f"{_sent_text(stats.get('sent') or {})}",
        f"verification emoji {emoji}  (roster height {height})",
    ]
    return [*lines, *table] if rows else [*lines, "  (nobody else here yet)"]


def _received_summary(pid: str, entry: dict[str, Any]) -> dict[str, Any]:
    v = entry.get("video") if isinstance(entry.get("video"), dict) else {}
    a = entry.get("audio") if isinstance(entry.get("audio"), dict) else {}
    assert isinstance(v, dict) and isinstance(a, dict)
    return {
        "name": entry.get("name", pid),
        "framesDecoded": v.get("framesDecoded", 0),
        "fps": v.get("framesPerSecond", 0.0),
        "latencyMsP50": v.get("latencyMsP50"),
        "latencyMsP95": v.get("latencyMsP95"),
        "jitterBufferDelayMs": v.get("jitterBufferDelayMs"),
        "packetsLost": v.get("packetsLost", 0),
        "bitrateKbps": v.get("bitrateKbps"),
        "freezeCount": v.get("freezeCount"),
        "audio": {
            k: a.get(k)
            for k in ("packetsReceived", "packetsLost", "jitterBufferDelayMs", "bitrateKbps")
        }
        if a
        else None,
    }


class _Session:
    """One run of ``callpipe join`` after the arguments were checked."""

    def __init__(self, args: argparse.Namespace, setup: _Setup) -> None:
        self.args = args
        self.setup = setup
        self.display = LiveBlock(sys.stderr)
        self.stop = asyncio.Event()
        self.ended: str | None = None  # why the call ended on its own
        self.received: dict[str, dict[str, Any]] = {}  # remote id -> last stats seen
        self.t0 = time.monotonic()
        self.jsonl: IO[str] | None = None
        self.grid: _Grid | None = None
        self.call: Any = None

    # -- helpers ---------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _event(self, text: str) -> None:
        self.display.event(f"[{self._elapsed():5.1f} s] {text}")

    def _snapshot(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.call.stats()
        for pid, entry in (stats.get("received") or {}).items():
            if isinstance(entry, dict):
                self.received[pid] = entry
        return stats

    def _write_jsonl(self, stats: dict[str, Any]) -> None:
        if self.jsonl is None:
            return
        line = json.dumps(
            {"timestamp": time.time(), "elapsed": self._elapsed(), **stats}, default=str
        )
        try:
            self.jsonl.write(line + "\n")
            self.jsonl.flush()
        except (OSError, ValueError):  # the reader went away: nobody is watching any more
            self.jsonl = None
            self.stop.set()

    # -- tasks -----------------------------------------------------------------------------
    async def _events(self, stream: Any) -> None:
        from ..call import group as g

        async for ev in stream:
            if isinstance(ev, g.ParticipantJoined):
                p = ev.participant
                self._event(f"+ {p.name} ({p.id}) joined")
            elif isinstance(ev, g.ParticipantLeft):
                self._event(f"- {ev.name} ({ev.participant_id}) left: {ev.reason}")
            elif isinstance(ev, g.TrackAdded):
                self._event(f"  {ev.track.participant_id}: {ev.track.kind} track added")
            elif isinstance(ev, g.TrackRemoved):
                self._event(f"  {ev.track.participant_id}: {ev.track.kind} track removed")
            elif isinstance(ev, g.EmojiChanged):
                self._event(f"emoji: {_emoji_text(ev.emoji)} (roster height {ev.height})")
            elif isinstance(ev, g.Reconnecting):
                self._event(f"reconnecting: {ev.reason}")
            elif isinstance(ev, g.Reconnected):
                self._event(f"reconnected as {ev.participant_id}")
            elif isinstance(ev, g.CallEnded):
                if not self.stop.is_set():
                    self.ended = ev.reason
                    self._event(f"call ended: {ev.reason}")
                    self.stop.set()
                return

    async def _stats(self) -> None:
        interval = self.args.stats_interval
        while not self.stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), interval)
            if self.stop.is_set():
                return
            stats = self._snapshot()
            self._write_jsonl(stats)
            if not self.args.quiet:
                self.display.update(stats_lines(stats, self.display.tty, self._elapsed()))

    async def _record(self) -> None:
        grid = self.grid
        assert grid is not None and grid.encoder is not None
        loop = asyncio.get_running_loop()
        period = 1.0 / RECORD_FPS
        start = loop.time()
        tick = 0
        while not self.stop.is_set():
            grid.sync(self.call.participants)
            try:
                await asyncio.to_thread(grid.record_tick, round(tick * 90000 / RECORD_FPS))
            except CallpipeError as e:  # e.g. the disk is full: the call goes on
                self._event(f"recording stopped: {e}")
                return
            # steady rate: the next tick on the wall clock, skipping ticks when behind
            tick = max(tick + 1, int((loop.time() - start) / period))
            delay = start + tick * period - loop.time()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), max(0.0, delay))

    # -- the whole run ---------------------------------------------------------------------
    async def run(self) -> int:
        from ..call.group import GroupCall
        from ..e2ee.roster import Identity

        args, setup = self.args, self.setup
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        if args.record or args.grid:
            self.grid = _Grid(args.grid_size, args.record)
        if args.stats_jsonl == "-":
            self.jsonl = sys.stdout
        elif args.stats_jsonl:
            try:
                self.jsonl = open(args.stats_jsonl, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as e:
                raise CallpipeError(
                    f"cannot write --stats-jsonl {args.stats_jsonl!r}: {e}"
                ) from None
        self.call = GroupCall(
            setup.url,
            setup.room,
            token=setup.token,
            identity=Identity.generate(),
            video=setup.video,
            audio=setup.audio,
            name=setup.name,
            config=setup.config,
            ssl=setup.ssl,
        )
        tasks: list[asyncio.Task[None]] = []
        recording: asyncio.Task[None] | None = None
        final: dict[str, Any] | None = None
        try:
            join = asyncio.ensure_future(self.call.join())
            stop_wait = asyncio.ensure_future(self.stop.wait())
            done, _ = await asyncio.wait(
                {join, stop_wait}, timeout=args.join_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            stop_wait.cancel()
            if join not in done:
                join.cancel()
                with contextlib.suppress(BaseException):
                    await join
                if self.stop.is_set():
                    self._event("interrupted while joining")
                    return 130
                raise CallpipeError(
                    f"cannot join room {setup.room!r} at {setup.url}: no answer within "
                    f"{args.join_timeout:g} s"
                )
            try:
                join.result()
            except (CallpipeError, OSError) as e:
                raise CallpipeError(f"cannot join room {setup.room!r} at {setup.url}: {e}") from e
            self.t0 = time.monotonic()
            self._event(
                f"joined room {setup.room!r} at {setup.url} as {self.call.name} "
                f"({self.call.participant_id}); end-to-end encrypted"
            )
            events = self.call.events()  # subscribed from here on
            # who was there already, and what happened during the join
            for pid, p in list(self.call.participants.items()):
                self._event(f"+ {p.name} ({pid}) is here")
            if self.call.emoji:
                self._event(
                    f"emoji: {_emoji_text(self.call.emoji)} (roster height "
                    f"{self.call.roster_height})"
                )
            tasks.append(asyncio.create_task(self._events(events)))
            tasks.append(asyncio.create_task(self._stats()))
            if self.grid is not None and self.grid.encoder is not None:
                recording = asyncio.create_task(self._record())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), args.duration)
            self.stop.set()
            # what the call looked like at the end, before anyone sees us leave
            final = self._snapshot()
            self._write_jsonl(final)
            if self.grid is not None:
                self.grid.sync(self.call.participants)
        finally:
            self.stop.set()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(BaseException):
                    await t
            if recording is not None:  # ends after its current frame (never cut mid-encode)
                with contextlib.suppress(BaseException):
                    await recording
            if self.call is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.call.leave(), 10.0)
            self.setup.close_sources()
            grid_done = self._finish_grid(final is not None)
            if self.jsonl is not None and self.jsonl is not sys.stdout:
                self.jsonl.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        assert final is not None
        if not args.quiet:
            self.display.update(stats_lines(final, self.display.tty, self._elapsed()))
            self.display.finish()
        if args.summary:
            self._write_summary(final)
        self._event(f"left; {grid_done}" if grid_done else "left")
        if self.ended is not None:
            raise CallpipeError(f"the call ended: {self.ended}")
        return 0

    def _finish_grid(self, write_png: bool) -> str:
        grid = self.grid
        if grid is None:
            return ""
        notes = []
        try:
            if write_png and self.args.grid:
                grid.compositor.snapshot_png(self.args.grid)
                notes.append(f"wrote {self.args.grid}")
            if grid.recorder is not None:
                grid.recorder.close()
                notes.append(f"recorded {grid.frames} grid frames to {self.args.record}")
        finally:
            grid.close()
        return ", ".join(notes)

    def _write_summary(self, final: dict[str, Any]) -> None:
        summary = {
            "id": final.get("id"),
            "name": final.get("name"),
            "room": self.setup.room,
            "emoji": final.get("emoji"),
            "rosterHeight": final.get("rosterHeight"),
            "durationS": round(self._elapsed(), 3),
            "received": {
                pid: _received_summary(pid, entry) for pid, entry in self.received.items()
            },
            "sent": final.get("sent"),
            "errors": final.get("errors", []),
            "session": final.get("session"),
            "call": final.get("call"),
            "transport": final.get("transport"),
            "ended": self.ended,
            "gridFrames": self.grid.frames if self.grid is not None else None,
        }
        try:
            with open(self.args.summary, "w", encoding="utf-8") as f:
                json.dump(summary, f, indent=2, ensure_ascii=False, default=str)
        except OSError as e:
            raise CallpipeError(f"cannot write --summary {self.args.summary!r}: {e}") from None


def run(args: argparse.Namespace) -> int:
    """Join, run until --duration / Ctrl-C / SIGTERM, leave."""
    _check_args(args)
    setup = _setup(args)
    try:
        return asyncio.run(_Session(args, setup).run())
    finally:
        setup.close_sources()
