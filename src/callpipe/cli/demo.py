"""``callpipe demo``: the main job behind ``make demo`` -- a real end-to-end encrypted group
call on loopback.

Starts a ``callpipe sfu`` process on a free port of 127.0.0.1 (with a random join-token secret
handed over through the environment, never the command line) and N ``callpipe join
--synthetic`` processes (the first one opens the call, then all the others join at once).  It
reads their ``--stats-jsonl`` output (stdout pipes) to show one live table -- every receiver
<- sender stream: fps, kbit/s, packets lost, jitter-buffer delay, glass-to-glass latency --
and every participant's verification emoji.  ``--duration`` seconds after everyone sees
everyone it stops the participants (SIGTERM), then the SFU, and writes ``DIR/summary.json``,
``DIR/grid.webm`` and ``DIR/grid.png`` (participant 0's grid of the others) and ``DIR/logs/``
(every process's stderr, per-participant summaries, the SFU's stats).  Exit status 0 only when
every participant decoded video from every other one and all emoji agree.

``callpipe demo --codec`` runs the earlier codec demo (:mod:`callpipe.cli._codec_demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import CallpipeError
from ._live import LiveBlock, format_table, num
from .join import positive as _positive
from .token import SECRET_ENV

#: display names of the demo's participants (then P17, P18, ...)
NAMES = (
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi",
    "Ivan", "Judy", "Ken", "Laura", "Mike", "Nina", "Oscar", "Peggy",
)  # fmt: skip
#: the room every demo participant joins
ROOM = "demo"
#: seconds to wait for everyone to see everyone before giving up
STARTUP_TIMEOUT_S = 40.0
#: seconds the participants and the SFU get to stop on SIGTERM before SIGKILL
STOP_TIMEOUT_S = 15.0
#: seconds between stats lines of the participants
STATS_INTERVAL_S = 0.5

_CODEC_DEFAULTS = {"width": 640, "height": 360, "fps": 30.0, "duration": 5.0, "bitrate": 800}
_GROUP_DEFAULTS = {"width": 320, "height": 240, "fps": 30.0, "duration": 10.0, "bitrate": 400}


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``callpipe demo``."""
    p = sub.add_parser(
        "demo",
        help="run the demo: an SFU and N participants on loopback in an E2EE group call, with "
        "live stats, emoji, summary.json and a grid recording",
        description="Start a callpipe SFU and --participants 'callpipe join --synthetic' "
        "processes on 127.0.0.1: a real end-to-end encrypted group call with synthetic video "
        "and audio. Shows one live table of every receiver <- sender stream (fps, kbit/s, "
        "packets lost, jitter-buffer delay, glass-to-glass latency) and every participant's "
        "verification emoji; --duration seconds after everyone sees everyone it ends the call "
        "and writes DIR/summary.json, DIR/grid.webm and DIR/grid.png (the first participant's "
        "view of the others) and DIR/logs/. Exits 1 if anyone did not see anyone or the "
        "emoji differ. With --codec: the codec demo instead (VP8 + Opus encode/decode of a "
        "synthetic clip; summary.json, demo.ivf, demo.png).",
    )
    p.add_argument(
        "--codec",
        action="store_true",
        help="run the codec demo (encode/decode only, no call) instead of the group call",
    )
    p.add_argument(
        "--participants",
        type=_positive(int, "participants"),
        default=4,
        help="participants in the call, >= 2 (default: %(default)s)",
    )
    p.add_argument("--out", default="out/demo", help="output directory (default: %(default)s)")
    p.add_argument(
        "--duration", type=_positive(float, "s"), default=None,
        help="seconds of call once everyone sees everyone (codec demo: clip length) "
        "(default: 10; codec demo: 5)",
    )  # fmt: skip
    p.add_argument(
        "--width", type=_positive(int, "pixels"), default=None,
        help="video width in pixels (default: 320; codec demo: 640)",
    )  # fmt: skip
    p.add_argument(
        "--height", type=_positive(int, "pixels"), default=None,
        help="video height in pixels (default: 240; codec demo: 360)",
    )  # fmt: skip
    p.add_argument(
        "--fps", type=_positive(float, "frames/s"), default=None,
        help="video frame rate in frames/s (default: 30)",
    )  # fmt: skip
    p.add_argument(
        "--bitrate", type=_positive(int, "kbps"), default=None,
        help="VP8 bitrate of every sender in kbit/s (default: 400; codec demo: 800)",
    )  # fmt: skip
    p.add_argument(
        "--cpu-used", type=int, default=-6, help="codec demo: libvpx speed, -16..16 (default: -6)"
    )
    p.add_argument(
        "--threads", type=int, default=1, help="codec demo: encoder threads (default: 1)"
    )
    p.add_argument(
        "--audio-bitrate", type=int, default=32, help="Opus bitrate in kbit/s (default: 32)"
    )
    p.set_defaults(func=run, _parser=p)
    return p


def run(args: argparse.Namespace) -> int:
    """The group-call demo, or the codec demo with ``--codec``."""
    defaults = _CODEC_DEFAULTS if args.codec else _GROUP_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.codec:
        from . import _codec_demo

        args.fps = int(args.fps) if float(args.fps).is_integer() else args.fps
        return _codec_demo.run(args)
    if args.participants < 2:
        args._parser.error(f"--participants must be at least 2, got {args.participants}")
    if args.width < 64 or args.height < 48:
        args._parser.error("the synthetic source needs at least 64x48 pixels")
    return asyncio.run(GroupDemo(args).run())


# -- processes --------------------------------------------------------------------------------
def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM this process when the demo dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


async def _spawn(argv: list[str], env: dict[str, str], stderr: IO[bytes]) -> Any:
    """A child process in its own session (Ctrl-C reaches only the demo, which stops the
    children in order), stdout piped, stderr to ``stderr``."""
    return await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )


async def _stop_processes(procs: list[Any], timeout: float) -> None:
    """SIGTERM every process still running, all at once; SIGKILL what is left after
    ``timeout`` s."""
    live = [p for p in procs if p.returncode is None]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(signal.SIGTERM)
    if not live:
        return
    waits = [asyncio.ensure_future(p.wait()) for p in live]
    _, pending = await asyncio.wait(waits, timeout=timeout)
    if pending:
        for p in live:
            if p.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
        await asyncio.wait(pending, timeout=5.0)


def _tail(path: str, lines: int = 6) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().rstrip().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + ln for ln in text[-lines:])


@dataclass
class _Participant:
    index: int
    name: str
    log: str
    summary_path: str
    proc: Any = None
    latest: dict[str, Any] | None = None  # the last stats line
    final: dict[str, Any] | None = None  # the last stats line before the call was ended
    lines: int = 0
    reader: asyncio.Task[None] | None = None
    summary: dict[str, Any] | None = None
    ids: set[str] = field(default_factory=set)


def _video(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict) and isinstance(entry.get("video"), dict):
        video: dict[str, Any] = entry["video"]
        return video
    return {}


def _dig(obj: Any, *keys: str) -> Any:
    for k in keys:
        obj = obj.get(k) if isinstance(obj, dict) else None
    return obj


class GroupDemo:
    """One run of the group-call demo (see the module docs).

    :param args: the parsed ``callpipe demo`` arguments.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = args.out
        self.logs = os.path.join(self.out, "logs")
        self.display = LiveBlock(sys.stderr)
        self.stop = asyncio.Event()
        self.interrupted = False
        self.sfu: Any = None
        self.sfu_url = ""
        self.people: list[_Participant] = []
        self.files: list[IO[bytes]] = []
        self.t0 = time.monotonic()
        self.failure: str | None = None
        self._shown = 0.0

    # -- output -----------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.display.event(f"[{time.monotonic() - self.t0:5.1f} s] {text}")

    def _name_of(self, pid: str) -> str:
        for p in self.people:
            if p.latest is not None and p.latest.get("id") == pid:
                return p.name
        return pid

    def _rows(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(receiver, sender, video stats) for every stream seen so far."""
        rows = []
        for p in self.people:
            if p.latest is None:
                continue
            for pid, entry in (p.latest.get("received") or {}).items():
                name = entry.get("name") if isinstance(entry, dict) else None
                rows.append((p.name, str(name or self._name_of(pid)), _video(entry)))
        return rows

    def _emoji_lines(self) -> list[str]:
        out = []
        for p in self.people:
            st = p.latest or {}
            emoji = st.get("emoji")
            shown = " ".join(emoji) if emoji else "(pending)"
            pid = st.get("id", "-")
            out.append(
                f"  {p.name:<8} {pid:<6} {shown}   roster height {st.get('rosterHeight', '-')}"
            )
        return out

    def _table(self) -> list[str]:
        return format_table(
            ["receiver <- sender", "fps", "kbps", "lost", "jb ms", "latency p50 ms"],
            [
                [
                    f"{rx} <- {tx}",
                    num(v.get("framesPerSecond"), 1),
                    num(v.get("bitrateKbps")),
                    num(v.get("packetsLost")),
                    num(v.get("jitterBufferDelayMs")),
                    num(v.get("latencyMsP50")),
                ]
                for rx, tx, v in self._rows()
            ],
        )

    def _status_lines(self) -> list[str]:
        n = len(self.people)
        rows = self._rows()
        decoding = sum(1 for _, _, v in rows if (v.get("framesDecoded") or 0) > 0)
        head = (
            f"[{time.monotonic() - self.t0:5.1f} s] room {ROOM!r}: {n} participants, "
            f"{decoding}/{n * (n - 1)} video streams decoding, E2EE"
        )
        if self.display.tty:
            return [head, *self._table(), "verification emoji:", *self._emoji_lines()]
        fps = [v.get("framesPerSecond") or 0.0 for _, _, v in rows]
        lat = [v["latencyMsP50"] for _, _, v in rows if v.get("latencyMsP50") is not None]
        lost = sum(v.get("packetsLost") or 0 for _, _, v in rows)
        emoji = {tuple(p.latest.get("emoji") or ()) for p in self.people if p.latest}
        if () in emoji or any(p.latest is None for p in self.people):
            agree = "pending"
        elif len(emoji) == 1:
            agree = " ".join(next(iter(emoji)))
        else:
            agree = "differ (still settling?)"
        parts = [head]
        if fps:
            parts.append(f"fps {min(fps):.1f}..{max(fps):.1f}")
        if lat:
            parts.append(f"latency p50 {min(lat):.0f}..{max(lat):.0f} ms")
        parts.append(f"lost {lost}")
        parts.append(f"emoji {agree}")
        return [" | ".join(parts)]

    def _show(self, force: bool = False) -> None:
        """Redraw the live table (terminal), or log a status line at most every 2 s."""
        now = time.monotonic()
        since = now - self._shown
        if self.display.tty or since >= 1.9 or (force and since > 0.5):
            self._shown = now
            self.display.update(self._status_lines())

    # -- children ---------------------------------------------------------------------------
    async def _read_stats(self, p: _Participant) -> None:
        assert p.proc is not None and p.proc.stdout is not None
        while True:
            line = await p.proc.stdout.readline()
            if not line:
                return
            try:
                stats = json.loads(line)
            except ValueError:
                continue
            if isinstance(stats, dict):
                p.latest = stats
                p.lines += 1
                if stats.get("id"):
                    p.ids.add(str(stats["id"]))

    async def _drain(self, stream: Any) -> None:
        while await stream.readline():
            pass

    async def _start_sfu(self, env: dict[str, str]) -> None:
        log = open(os.path.join(self.logs, "sfu.log"), "wb")  # noqa: SIM115
        self.files.append(log)
        self.sfu = await _spawn(
            [sys.executable, "-m", "callpipe.cli.main", "sfu", "--host", "127.0.0.1",
             "--port", "0", "--stats-file", os.path.join(self.logs, "sfu-stats.json")],
            env, log,
        )  # fmt: skip
        assert self.sfu.stdout is not None
        try:
            line = await asyncio.wait_for(self.sfu.stdout.readline(), 30.0)
        except asyncio.TimeoutError:
            line = b""
        m = re.search(r"(ws://127\.0\.0\.1:\d+)", line.decode("utf-8", "replace"))
        if m is None:
            log.flush()
            raise CallpipeError(
                "the SFU did not start:\n" + _tail(os.path.join(self.logs, "sfu.log"))
            )
        self.sfu_url = m.group(1)
        asyncio.ensure_future(self._drain(self.sfu.stdout))
        self._say(f"SFU up at {self.sfu_url} ({line.decode().strip()})")

    async def _start_participant(self, p: _Participant, env: dict[str, str]) -> None:
        a = self.args
        argv = [
            sys.executable, "-m", "callpipe.cli.main", "join", self.sfu_url,
            "--room", ROOM, "--name", p.name, "--synthetic",
            "--width", str(a.width), "--height", str(a.height), "--fps", f"{a.fps:g}",
            "--bitrate", str(a.bitrate), "--audio-bitrate", str(a.audio_bitrate),
            "--stats-interval", f"{STATS_INTERVAL_S:g}", "--stats-jsonl", "-",
            "--summary", p.summary_path, "--join-timeout", f"{STARTUP_TIMEOUT_S:g}",
        ]  # fmt: skip
        if p.index == 0:
            argv += ["--record", os.path.join(self.out, "grid.webm"),
                     "--grid", os.path.join(self.out, "grid.png")]  # fmt: skip
        log = open(p.log, "wb")  # noqa: SIM115
        self.files.append(log)
        p.proc = await _spawn(argv, env, log)
        p.reader = asyncio.create_task(self._read_stats(p))

    def _everyone_sees_everyone(self) -> bool:
        n = len(self.people)
        for p in self.people:
            if p.latest is None:
                return False
            got = [
                e for e in (p.latest.get("received") or {}).values()
                if (_video(e).get("framesDecoded") or 0) > 0
            ]  # fmt: skip
            if len(got) < n - 1:
                return False
        return True

    def _exited(self) -> _Participant | None:
        return next(
            (p for p in self.people if p.proc is not None and p.proc.returncode is not None),
            None,
        )

    async def _phase(self, until: Any, timeout: float) -> str:
        """Show the live table until ``until()`` is true (``"done"``), ``timeout`` s pass
        (``"timeout"``), a participant or the SFU exits (``"exited"``, ``"sfu-exited"``) or
        Ctrl-C (``"stopped"``)."""
        end = time.monotonic() + timeout
        while True:
            self._show()
            if self.stop.is_set():
                return "stopped"
            if self._exited() is not None:
                return "exited"
            if self.sfu is not None and self.sfu.returncode is not None:
                return "sfu-exited"
            if until():
                return "done"
            left = end - time.monotonic()
            if left <= 0:
                return "timeout"
            step = 1.0 if self.display.tty else 2.0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop.wait(), min(left, step))

    # -- the run ----------------------------------------------------------------------------
    async def run(self) -> int:
        """Run the demo; the exit status."""
        os.makedirs(self.logs, exist_ok=True)
        for stale in ("summary.json", "grid.webm", "grid.png"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(self.out, stale))
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            self.interrupted = True
            self.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
        env = {**os.environ, SECRET_ENV: secrets.token_urlsafe(32), "PYTHONUNBUFFERED": "1"}
        n = self.args.participants
        self.people = [
            _Participant(
                i,
                NAMES[i] if i < len(NAMES) else f"P{i + 1}",
                os.path.join(self.logs, f"participant-{i}.log"),
                os.path.join(self.logs, f"participant-{i}.json"),
            )
            for i in range(n)
        ]
        call_s = 0.0
        detail = ""
        try:
            await self._start_sfu(env)
            self._say(
                f"{n} participants joining room {ROOM!r} with synthetic "
                f"{self.args.width}x{self.args.height} video at {self.args.fps:g} fps and audio"
            )
            # the first one opens the call (its roster chain and first emoji), then all the
            # others join at once
            first = self.people[0]
            await self._start_participant(first, env)
            how = await self._phase(
                lambda: bool(first.latest and first.latest.get("emoji")), STARTUP_TIMEOUT_S
            )
            waited_for = f"{first.name} to open the call (first emoji)"
            if how == "done":
                for p in self.people[1:]:
                    await self._start_participant(p, env)
                waited_for = "everyone to see everyone"
                how = await self._phase(self._everyone_sees_everyone, STARTUP_TIMEOUT_S)
            if how == "done":
                self._say(f"everyone sees everyone; calling for {self.args.duration:g} s")
                t_call = time.monotonic()
                how = await self._phase(lambda: False, self.args.duration)
                call_s = time.monotonic() - t_call
            if how == "timeout" and call_s == 0.0:
                self.failure = f"waited {STARTUP_TIMEOUT_S:g} s for {waited_for} in vain"
            elif how == "sfu-exited":
                self.failure = f"the SFU exited early (status {self.sfu.returncode})"
                detail = f"; the end of its log:\n{_tail(os.path.join(self.logs, 'sfu.log'))}"
            elif how == "exited":
                gone = self._exited()
                assert gone is not None
                self.failure = f"{gone.name} exited early (status {gone.proc.returncode})"
                detail = f"; the end of {gone.log}:\n{_tail(gone.log)}"
            self._show(force=True)
            self.display.finish()
            if self.failure:
                self._say(self.failure + detail)
            # the call as everyone saw it with everyone present; then end it: the recording
            # participant first (its last grid still shows everyone), then all the others at
            # once (each one snapshots its own stats before it leaves)
            for p in self.people:
                p.final = p.latest
            procs = [p.proc for p in self.people if p.proc is not None]
            await _stop_processes(procs[:1], STOP_TIMEOUT_S)
            await _stop_processes(procs[1:], STOP_TIMEOUT_S)
            for p in self.people:
                if p.reader is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(p.reader, 5.0)
        finally:
            await _stop_processes([p.proc for p in self.people if p.proc], STOP_TIMEOUT_S)
            if self.sfu is not None:
                await _stop_processes([self.sfu], STOP_TIMEOUT_S)
            for p in self.people:
                if p.reader is not None and not p.reader.done():
                    p.reader.cancel()
            for f in self.files:
                f.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        summary = self._summary(call_s)
        path = os.path.join(self.out, "summary.json")
        with open(path, "w", encoding="utf-8") as out:
            json.dump(summary, out, indent=2, ensure_ascii=False)
        self._report(summary, path)
        if self.interrupted:
            return 130
        return 0 if summary["ok"] else 1

    # -- results ----------------------------------------------------------------------------
    def _participant_summary(self, p: _Participant) -> dict[str, Any]:
        try:
            with open(p.summary_path, encoding="utf-8") as f:
                p.summary = json.load(f)
        except (OSError, ValueError):
            p.summary = None
        own: dict[str, Any] = p.summary or {}
        seen: dict[str, Any] = p.final or {}
        # received: the participant's own summary (counts up to the very end); emoji: its
        # last stats line before the call was ended, when everyone was still in the room
        # (leaving changes the roster and so the emoji of those who stay)
        received = own.get("received")
        if not isinstance(received, dict):
            received = {
                rid: {"name": e.get("name"), **_video(e)}
                for rid, e in (seen.get("received") or {}).items()
                if isinstance(e, dict)
            }
            for r in received.values():
                r["fps"] = r.get("framesPerSecond")
        keys = ("name", "framesDecoded", "fps", "latencyMsP50", "jitterBufferDelayMs",
                "packetsLost", "bitrateKbps", "freezeCount")  # fmt: skip
        emoji = seen.get("emoji") or own.get("emoji")
        return {
            "id": own.get("id") or seen.get("id"),
            "name": p.name,
            "emoji": list(emoji) if emoji else None,
            "rosterHeight": seen.get("rosterHeight", own.get("rosterHeight")),
            "received": {
                rid: {k: r.get(k) for k in keys}
                for rid, r in received.items()
                if isinstance(r, dict)
            },
            "exitCode": p.proc.returncode if p.proc is not None else None,
            "summaryWritten": p.summary is not None,
            "log": p.log,
        }

    def _summary(self, call_s: float) -> dict[str, Any]:
        participants = [self._participant_summary(p) for p in self.people]
        missing = []
        for me in participants:
            for other in participants:
                if other is me:
                    continue
                got = me["received"].get(other["id"]) if other["id"] else None
                if not got or not (got.get("framesDecoded") or 0) > 0:
                    missing.append(f"{me['name']} <- {other['name']}")
        first = participants[0]["emoji"] if participants else None
        emoji_agree = (
            first is not None and len(first) == 4
            and all(x["emoji"] == first for x in participants)
        )  # fmt: skip
        webm, png = os.path.join(self.out, "grid.webm"), os.path.join(self.out, "grid.png")
        grid_ok = all(os.path.isfile(f) and os.path.getsize(f) > 0 for f in (webm, png))
        clean_exit = all(x["exitCode"] == 0 for x in participants)
        sfu_stats: Any = None
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(self.logs, "sfu-stats.json"), encoding="utf-8") as f:
                sfu_stats = json.load(f)
        ok = (
            not missing and emoji_agree and grid_ok and clean_exit and self.failure is None
            and not self.interrupted
        )  # fmt: skip
        grid_frames = (self.people[0].summary or {}).get("gridFrames") if self.people else None
        return {
            "ok": ok,
            "participants": participants,
            "emojiAgree": emoji_agree,
            "everyoneSawEveryone": not missing,
            "missing": missing,
            "failure": self.failure,
            "interrupted": self.interrupted,
            "room": ROOM,
            "callDurationS": round(call_s, 3),
            "video": {
                "width": self.args.width,
                "height": self.args.height,
                "fps": self.args.fps,
                "bitrateKbps": self.args.bitrate,
            },
            "audioBitrateKbps": self.args.audio_bitrate,
            "grid": {"webm": webm, "png": png, "frames": grid_frames, "ok": grid_ok},
            "sfu": {
                "url": self.sfu_url,
                "forwardedPackets": _dig(sfu_stats, "media", "counters", "forwarded"),
                "forwardedBytes": _dig(sfu_stats, "media", "counters", "forwarded_bytes"),
                "exitCode": self.sfu.returncode if self.sfu is not None else None,
                "stats": sfu_stats,
            },
            "logs": self.logs,
        }

    def _report(self, summary: dict[str, Any], path: str) -> None:
        rows = []
        for me in summary["participants"]:
            for rid, r in me["received"].items():
                rows.append(
                    [
                        f"{me['name']} <- {r.get('name') or rid}",
                        str(r.get("framesDecoded") or 0),
                        num(r.get("fps"), 1),
                        num(r.get("packetsLost")),
                        num(r.get("jitterBufferDelayMs")),
                        num(r.get("latencyMsP50")),
                    ]
                )
        out = sys.stdout
        out.write(
            f"group call: {len(summary['participants'])} participants, "
            f"{summary['callDurationS']:.1f} s with everyone connected, E2EE\n"
        )
        for line in format_table(
            ["receiver <- sender", "frames", "fps", "lost", "jb ms", "latency p50 ms"], rows
        ):
            out.write(line + "\n")
        for me in summary["participants"]:
            emoji = " ".join(me["emoji"]) if me["emoji"] else "(none)"
            out.write(f"  {me['name']:<8} {me['id'] or '-':<6} {emoji}\n")
        out.write(f"emoji agree: {'yes' if summary['emojiAgree'] else 'NO'}; ")
        missing = summary["missing"]
        out.write("everyone saw everyone\n" if not missing else f"MISSING: {', '.join(missing)}\n")
        out.write(f"wrote {path}, {summary['grid']['webm']}, {summary['grid']['png']}\n")
        out.flush()
        if not summary["ok"]:
            reasons = [summary["failure"]] if summary["failure"] else []
            if summary["interrupted"]:
                reasons.append("interrupted")
            if summary["missing"]:
                reasons.append("not everyone saw everyone")
            if not summary["emojiAgree"]:
                reasons.append("the emoji differ")
            if not summary["grid"]["ok"]:
                reasons.append("no grid recording")
            bad = [p["name"] for p in summary["participants"] if p["exitCode"] != 0]
            if bad:
                reasons.append(f"participants exited with errors: {', '.join(bad)}")
            why = "; ".join(r.splitlines()[0] for r in reasons) or "see summary.json"
            print(f"demo: FAILED ({why}); logs in {self.logs}", file=sys.stderr)
