"""Plain-RTP interop of `callpipe stream` / `callpipe receive` with real ffmpeg processes.

Everything runs on 127.0.0.1 with free ports; every process has a time limit.
* ffmpeg decodes callpipe's VP8 + Opus stream from the SDP: the stamps of our synthetic
  frames come back in order, and the audio is there (with its audio stamps).
* callpipe decodes and records ffmpeg's VP8 and Opus RTP streams; ffprobe reads the recordings.
* callpipe -> callpipe: SIGTERM stops the sender cleanly, its RTCP BYE stops the receivers,
  receiver reports give the sender a round-trip time.
* Unusable arguments: exit status 2 with a clear message, no traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callpipe.cli.main import main
from callpipe.media import VideoFrame, read_audio_stamps, read_stamp
from callpipe.rtp.sdp import parse_sdp, read_sdp_file, write_sdp

pytestmark = pytest.mark.skipif(
    not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="needs ffmpeg and ffprobe"
)

HOST = "127.0.0.1"
W, H = 320, 240


def callpipe_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "callpipe.cli.main", *args]


def free_ports(count: int = 4) -> int:
    """An even port P with P..P+count-1 free for UDP on 127.0.0.1."""
    for _ in range(200):
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind((HOST, 0))
        base = probe.getsockname()[1] & ~1
        probe.close()
        if base + count > 65535 or base < 1024:
            continue
        socks = []
        try:
            for i in range(count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((HOST, base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP ports")


def udp_bound(port: int) -> bool:
    """True when some process has a UDP socket bound to ``port`` (Linux /proc/net/udp)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f)  # the header
                if any(line.split()[1].endswith(suffix) for line in f if line.strip()):
                    return True
        except OSError:
            pass
    return False


def wait_bound(port: int, proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not udp_bound(port):
        if proc.poll() is not None:
            raise AssertionError(f"process exited early ({proc.returncode}): {proc.args}")
        if time.monotonic() > end:
            raise AssertionError(f"nothing bound UDP port {port} within {timeout} s")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def ffprobe(path: Path, entries: str, count: str) -> dict[str, Any]:
    res = subprocess.run(
        ["ffprobe", "-v", "error", count, "-show_entries", entries, "-of", "json", str(path)],
        capture_output=True, text=True, timeout=30,
    )
    assert res.returncode == 0, res.stderr
    out: dict[str, Any] = json.loads(res.stdout)
    return out


# -- ffmpeg decodes callpipe's stream ----------------------------------------------------------
def test_ffmpeg_decodes_callpipe_stream_from_the_sdp(tmp_path: Path) -> None:
    port = free_ports(4)
    sdp = tmp_path / "s.sdp"
    # ffmpeg needs the SDP before the first packet: write the one `stream` will write
    sdp.write_text(write_sdp(HOST, port, port + 2, framerate=30))
    yuv, wav = tmp_path / "v.yuv", tmp_path / "a.wav"
    ff = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-protocol_whitelist",
         "file,udp,rtp", "-i", str(sdp),
         "-map", "0:v", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p",
         str(yuv), "-map", "0:a", "-f", "wav", str(wav)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_bound(port, ff)
        wait_bound(port + 2, ff)
        written = tmp_path / "written.sdp"
        res = subprocess.run(
            callpipe_cmd("stream", "--source", "synthetic", "--to", f"{HOST}:{port}", "--sdp",
                         str(written), "--duration", "3", "--width", str(W), "--height",
                         str(H), "--fps", "30"),
            capture_output=True, text=True, timeout=30,
        )
        assert res.returncode == 0, res.stderr
        assert "VP8 320x240" in res.stderr and "3 s sent" in res.stderr
        assert "Traceback" not in res.stderr
        # the SDP the command wrote describes the same streams
        a, b = parse_sdp(sdp.read_text()), read_sdp_file(str(written))
        assert [(m.media, m.port, m.rtpmaps) for m in a.media] == [
            (m.media, m.port, m.rtpmaps) for m in b.media
        ]
        # our RTCP BYE ends ffmpeg's input
        _, err = ff.communicate(timeout=20)
        assert ff.returncode == 0, err
    finally:
        stop(ff)

    frame_size = W * H * 3 // 2
    raw = np.fromfile(yuv, dtype=np.uint8)
    assert raw.size % frame_size == 0
    frames = raw.reshape(-1, frame_size)
    numbers = []
    for f in frames:
        stamp = read_stamp(VideoFrame.from_i420(f, W, H))
        assert stamp is not None, "ffmpeg's picture lost our stamp"
        numbers.append(stamp.frame_number)
    assert len(numbers) >= 85  # 90 sent on loopback
    assert all(b > a for a, b in zip(numbers, numbers[1:], strict=False)), numbers
    assert numbers[0] <= 2 and numbers[-1] >= 87

    with wave.open(str(wav)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    assert rate == 48000 and channels == 2  # opus/48000/2
    pcm = pcm.reshape(-1, 2)
    assert 2.5 <= pcm.shape[0] / rate <= 3.5
    assert np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > 1000  # far from silence
    words = [s.word_number for s in read_audio_stamps(pcm, rate)]
    assert len(words) >= 25  # one per 80 ms
    assert all(b > a for a, b in zip(words, words[1:], strict=False)), words


# -- callpipe decodes ffmpeg's streams ---------------------------------------------------------
@pytest.fixture(scope="module")
def from_ffmpeg(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ffmpeg process sending VP8 (to P) and Opus (to Q), two `callpipe receive`s."""
    tmp = tmp_path_factory.mktemp("from_ffmpeg")
    vport, aport = free_ports(2), free_ports(2)
    while abs(vport - aport) < 2:
        aport = free_ports(2)
    receivers = {}
    try:
        for codec, port in (("vp8", vport), ("opus", aport)):
            out = tmp / f"{codec}.webm"
            stats = tmp / f"{codec}.json"
            proc = subprocess.Popen(
                callpipe_cmd("receive", "--listen", f"{HOST}:{port}", "--codec", codec,
                             "--stats-json", str(stats), "--record", str(out), "--duration", "5",
                             "--idle-timeout", "1"),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            )
            receivers[codec] = (proc, out, stats)
        for codec, port in (("vp8", vport), ("opus", aport)):
            wait_bound(port, receivers[codec][0])
        ff = subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error",
             "-re", "-t", "3", "-f", "lavfi", "-i", f"testsrc2=size={W}x{H}:rate=30",
             "-re", "-t", "3", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
             "-map", "0:v", "-c:v", "libvpx", "-deadline", "realtime", "-b:v", "500k",
             "-f", "rtp", f"rtp://{HOST}:{vport}",
             "-map", "1:a", "-c:a", "libopus", "-b:a", "48k", "-f", "rtp",
             f"rtp://{HOST}:{aport}"],
            capture_output=True, text=True, timeout=30,
        )
        assert ff.returncode == 0, ff.stderr
        result: dict[str, Any] = {}
        for codec, (proc, out, stats) in receivers.items():
            stdout, stderr = proc.communicate(timeout=20)
            result[codec] = {
                "rc": proc.returncode, "stdout": stdout, "stderr": stderr, "record": out,
                "stats": json.loads(stats.read_text()) if stats.exists() else None,
            }
        return result
    finally:
        for proc, _, _ in receivers.values():
            stop(proc)


def test_callpipe_decodes_and_records_ffmpeg_vp8(from_ffmpeg: dict[str, Any]) -> None:
    r = from_ffmpeg["vp8"]
    assert r["rc"] == 0, r["stderr"]
    assert "Traceback" not in r["stderr"]
    st = r["stats"]
    assert st["codec"] == "VP8" and st["payloadType"] == 96  # what ffmpeg uses
    assert 80 <= st["framesDecoded"] <= 91  # 90 sent on loopback
    assert st["framesReceived"] >= st["framesDecoded"]
    assert st["keyFramesDecoded"] >= 1 and st["decodeErrors"] == 0
    assert st["packetsLost"] == 0 and st["packetsReceived"] > st["framesDecoded"]
    assert (st["frameWidth"], st["frameHeight"]) == (W, H)
    assert 0 <= st["jitter"] < 0.05 and st["bytesReceived"] > 50_000
    assert "frames received" in r["stdout"] and "lost 0" in r["stdout"]
    probe = ffprobe(r["record"], "stream=codec_name,width,height,nb_read_frames",
                    "-count_frames")
    (stream,) = probe["streams"]
    assert stream["codec_name"] == "vp8" and (stream["width"], stream["height"]) == (W, H)
    assert int(stream["nb_read_frames"]) == st["framesRecorded"] == st["framesDecoded"]


def test_callpipe_decodes_and_records_ffmpeg_opus(from_ffmpeg: dict[str, Any]) -> None:
    r = from_ffmpeg["opus"]
    assert r["rc"] == 0, r["stderr"]
    st = r["stats"]
    assert st["codec"] == "opus" and st["packetsLost"] == 0
    assert 145 <= st["opusPacketsDecoded"] <= 151  # 3 s of 20 ms packets
    assert abs(st["totalSamplesDecoded"] / 48000 - 3.0) < 0.1
    assert st["concealedSamples"] == 0 and st["totalAudioEnergy"] > 0.01
    probe = ffprobe(r["record"], "stream=codec_name,channels,nb_read_packets:format=duration",
                    "-count_packets")
    (stream,) = probe["streams"]
    assert stream["codec_name"] == "opus" and stream["channels"] == st["channels"] == 1
    assert int(stream["nb_read_packets"]) == st["opusPacketsDecoded"]
    assert abs(float(probe["format"]["duration"]) - 3.0) < 0.1


# -- callpipe -> callpipe, SIGTERM, BYE, RTCP both ways ----------------------------------------
def test_sigterm_stops_stream_and_its_bye_stops_the_receivers(tmp_path: Path) -> None:
    port = free_ports(4)
    sdp = tmp_path / "c.sdp"
    sdp.write_text(write_sdp(HOST, port, port + 2, framerate=30))
    recv = {}
    try:
        for codec, p in (("vp8", port), ("opus", port + 2)):
            stats = tmp_path / f"{codec}.json"
            recv[codec] = (subprocess.Popen(
                callpipe_cmd("receive", "--sdp", str(sdp), "--codec", codec, "--stats-json",
                             str(stats), "--duration", "20"),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True,
            ), stats)
            wait_bound(p, recv[codec][0])
        sent = tmp_path / "sent.json"
        sender = subprocess.Popen(
            callpipe_cmd("stream", "--to", f"{HOST}:{port}", "--width", str(W), "--height",
                         str(H), "--stats-json", str(sent)),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            time.sleep(2.5)
            sender.send_signal(signal.SIGTERM)
            _, err = sender.communicate(timeout=10)
        finally:
            stop(sender)
        assert sender.returncode == 0, err
        assert "stopped by SIGTERM" in err and "Traceback" not in err
        out = {}
        for codec, (proc, stats) in recv.items():
            stdout, stderr = proc.communicate(timeout=10)
            assert proc.returncode == 0, stderr
            assert "the sender said BYE" in stdout
            out[codec] = json.loads(stats.read_text())
    finally:
        for proc, _ in recv.values():
            stop(proc)
    s = json.loads(sent.read_text())
    v, a = out["vp8"], out["opus"]
    assert v["framesDecoded"] >= 30 and v["packetsLost"] == 0
    assert v["framesDecoded"] == s["video"]["framesSent"]
    assert v["packetsReceived"] == s["video"]["packetsSent"]
    assert a["opusPacketsDecoded"] == s["audio"]["opusPacketsSent"] >= 50
    assert v["ssrc"] == s["video"]["ssrc"] and a["ssrc"] == s["audio"]["ssrc"]
    # receiver reports came back to the sender's socket
    assert s["video"]["roundTripTimeMeasurements"] >= 1
    assert s["video"]["roundTripTime"] is not None and s["video"]["roundTripTime"] < 1.0


class LossyRelay(threading.Thread):
    """Forwards RTP from ``port`` to ``to`` dropping every ``nth`` packet, and RTCP both ways
    between ``port + 1`` and ``to + 1``."""

    def __init__(self, port: int, to: int, nth: int) -> None:
        super().__init__(daemon=True)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, port))
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtcp.bind((HOST, port + 1))
        self.to, self.nth = to, nth
        self.halt = threading.Event()
        self.count = self.dropped = 0
        # drops followed by a forwarded packet: the only ones a receiver can see (RFC 3550
        # A.3 counts loss up to the highest sequence number received)
        self.visible_drops = 0
        self.sender: Any = None

    def run(self) -> None:
        import select

        while not self.halt.is_set():
            ready, _, _ = select.select([self.rtp, self.rtcp], [], [], 0.05)
            for s in ready:
                data, addr = s.recvfrom(65536)
                if s is self.rtp:
                    self.count += 1
                    if self.count % self.nth == 0:
                        self.dropped += 1
                        continue
                    s.sendto(data, (HOST, self.to))
                    self.visible_drops = self.dropped
                elif addr == (HOST, self.to + 1):  # from the receiver: back to the sender
                    if self.sender is not None:
                        s.sendto(data, self.sender)
                else:
                    self.sender = addr
                    s.sendto(data, (HOST, self.to + 1))

    def close(self) -> None:
        self.halt.set()
        self.join(5)
        self.rtp.close()
        self.rtcp.close()


def test_loss_makes_the_receiver_ask_for_a_keyframe_and_the_sender_send_one(
    tmp_path: Path,
) -> None:
    relay_port, recv_port = free_ports(2), free_ports(2)
    while abs(relay_port - recv_port) < 2:
        recv_port = free_ports(2)
    relay = LossyRelay(relay_port, recv_port, nth=25)
    relay.start()
    rstats, sstats, rec = tmp_path / "r.json", tmp_path / "s.json", tmp_path / "r.webm"
    receiver = subprocess.Popen(
        callpipe_cmd("receive", "--listen", f"{HOST}:{recv_port}", "--codec", "vp8",
                     "--stats-json", str(rstats), "--record", str(rec), "--duration", "15"),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_bound(recv_port, receiver)
        res = subprocess.run(
            callpipe_cmd("stream", "--to", f"{HOST}:{relay_port}", "--no-audio", "--width",
                         str(W), "--height", str(H), "--duration", "3", "--keyframe-interval",
                         "100", "--stats-json", str(sstats)),
            capture_output=True, text=True, timeout=30,
        )
        assert res.returncode == 0, res.stderr
        out, err = receiver.communicate(timeout=10)
        assert receiver.returncode == 0, err
    finally:
        stop(receiver)
        relay.close()
    assert relay.dropped >= 3
    r, s = json.loads(rstats.read_text()), json.loads(sstats.read_text())
    assert r["packetsLost"] == relay.visible_drops >= relay.dropped - 1
    # lost packets broke frames: the receiver sent PLIs, the sender answered with keyframes
    assert r["pliCount"] >= 1 and s["keyFrameRequests"] >= 1
    assert s["video"]["keyFramesEncoded"] >= 2 and r["keyFramesDecoded"] >= 2
    # nothing damaged was decoded or recorded: frames after a gap wait for the keyframe
    assert r["decodeErrors"] == 0
    assert r["framesDecoded"] + r["framesDropped"] == r["framesReceived"]
    assert r["framesDecoded"] < s["video"]["framesSent"]
    probe = ffprobe(rec, "stream=nb_read_frames", "-count_frames")
    assert int(probe["streams"][0]["nb_read_frames"]) == r["framesRecorded"] == r["framesDecoded"]
    # what the sender learned from the receiver reports
    assert s["video"]["packetsLost"] > 0 and s["video"]["roundTripTime"] is not None


# -- unusable arguments ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stream", "--to", "nohost"], "expected HOST:PORT"),
        (["stream", "--to", "127.0.0.1:70000"], "port must be 1..65535"),
        (["stream", "--to", "127.0.0.1:x"], "port must be a number"),
        (["stream", "--to", "no-such-host.invalid:5004"], "cannot resolve host"),
        (["stream", "--to", "127.0.0.1:5004", "--source", "file:/no/such/file.webm"],
         "does not exist"),
        (["stream", "--to", "127.0.0.1:5004", "--source", "webcam"], "unknown --source"),
        (["stream", "--to", "127.0.0.1:65534"], "no room for RTCP/audio ports"),
        (["stream", "--to", "127.0.0.1:5004", "--bitrate", "1"], "--bitrate must be"),
        (["stream", "--to", "127.0.0.1:5004", "--duration", "-1"], "must be > 0 s"),
        (["receive", "--listen", "127.0.0.1:5004", "--codec", "h264"], "invalid choice"),
        (["receive", "--codec", "vp8"], "--listen HOST:PORT is required"),
        (["receive", "--listen", "127.0.0.1:5004"], "--codec vp8|opus is required"),
        (["receive", "--listen", "127.0.0.1:5004", "--codec", "vp8", "--record", "r.mp4"],
         "--record must end in .webm"),
        (["receive", "--sdp", "/no/such.sdp"], "cannot read it"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        rc = main(args)
    except SystemExit as e:  # argparse's own errors
        rc = int(e.code or 0)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("v=0\r\nm=video abc RTP/AVP 96\r\n", "line 2: m= port must be an integer"),
        ("hello\n", "line 1: expected '<letter>=<value>'"),
        ("s=x\nv=0\n", "starts with 'v=0'"),
        ("v=0\nc=IN IP4 127.0.0.1\nm=video 5004 RTP/AVP 96\n", "payload type 96"),
        ("v=0\nc=IN IP4 127.0.0.1\nm=audio 5004 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n",
         "no a vp8 stream"),
        ("v=0\nc=IN IP4 127.0.0.1\nm=video 5004 RTP/AVP 96\na=rtpmap:96 VP8/90000\n"
         "m=audio 5006 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n", None),
    ],
)
def test_bad_sdp_exits_2(text: str, message: str | None, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.sdp"
    path.write_text(text)
    codec = ["--codec", "vp8"] if message == "no a vp8 stream" else []
    assert main(["receive", "--sdp", str(path), *codec]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and str(path) in err
    assert (message or "pick one with --codec") in err


def test_port_in_use_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind((HOST, 0))
    try:
        port = busy.getsockname()[1]
        assert main(["receive", "--listen", f"{HOST}:{port}", "--codec", "opus"]) == 2
    finally:
        busy.close()
    assert "cannot listen for RTP" in capsys.readouterr().err


def test_help_texts_name_units() -> None:
    for cmd in ("stream", "receive"):
        res = subprocess.run(callpipe_cmd(cmd, "--help"), capture_output=True, text=True,
                             timeout=30, env={**os.environ, "COLUMNS": "200"})
        assert res.returncode == 0
        for unit in ("seconds", "HOST:PORT") + (("kbps", "pixels") if cmd == "stream" else ()):
            assert unit in res.stdout, (cmd, unit)
