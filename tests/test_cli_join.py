"""`callpipe join` as a real process: argument errors, refused and failed joins against a real
`callpipe sfu` process, and a short two-party call (a file sender and a synthetic one) on
127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sfuproc import SfuProcess

from callpipe.sfu.token import issue_token

SECRET = "join-cli-test-secret-0123456789abcdef"
OTHER_SECRET = "not-the-sfu-secret-0123456789abcdef"
PY = [sys.executable, "-m", "callpipe.cli.main"]


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "CALLPIPE_SECRET"}
    e.update(extra)
    return e


def join(*args: str, timeout: float = 60, **kw: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PY, "join", *args], capture_output=True, text=True, timeout=timeout, env=env(**kw)
    )


@pytest.fixture(scope="module")
def sfu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SfuProcess]:
    server = SfuProcess(secret=SECRET, stderr_path=tmp_path_factory.mktemp("sfu") / "sfu.log")
    yield server
    code, err = server.stop()
    assert code == 0, err


BAD_ARGUMENTS = [
    ([], "required: URL, --room"),
    (["http://127.0.0.1:1", "--room", "r", "--secret", SECRET], "ws:// or wss://"),
    (["ws://127.0.0.1:1", "--room", "no spaces", "--secret", SECRET], "invalid room name"),
    (["ws://127.0.0.1:1", "--room", "r"], "give --token, or --secret"),
    (["ws://127.0.0.1:1", "--room", "r", "--token", "garbage"], "not a join token"),
    (["ws://127.0.0.1:1", "--room", "r", "--secret", "short"], "at least 16 bytes"),
    (["ws://127.0.0.1:1", "--room", "r", "--secret", SECRET, "--fps", "0"], "> 0 frames/s"),
    (["ws://127.0.0.1:1", "--room", "r", "--secret", SECRET, "--bitrate", "fast"], "kbps"),
    (["ws://127.0.0.1:1", "--room", "r", "--secret", SECRET, "--record", "x.avi"], ".webm"),
    (["ws://127.0.0.1:1", "--room", "r", "--secret", SECRET, "--width", "8"], "too small"),
    (
        ["ws://127.0.0.1:1", "--room", "r", "--secret", SECRET, "--camera", "--file", "a"],
        "not allowed with",
    ),
]


def test_bad_arguments_exit_2_with_a_clear_message() -> None:
    # all cases at once: each is a whole process start-up
    procs = [
        subprocess.Popen(
            [*PY, "join", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env(),
        )  # fmt: skip
        for args, _ in BAD_ARGUMENTS
    ]
    for proc, (args, message) in zip(procs, BAD_ARGUMENTS, strict=True):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (args, err)
        last = err.strip().splitlines()[-1]
        assert last.startswith("callpipe join: error:") and message in last, (args, err)
        assert "Traceback" not in err


def test_token_signed_with_another_secret_is_refused(sfu: SfuProcess) -> None:
    token = issue_token(OTHER_SECRET, "room1", "Mallory")
    res = join(sfu.url, "--room", "room1", "--token", token, "--duration", "5")
    assert res.returncode == 1, res.stderr
    assert "callpipe: error: cannot join room 'room1'" in res.stderr
    assert "token-bad-signature" in res.stderr and "Traceback" not in res.stderr


def test_token_for_another_room_is_refused(sfu: SfuProcess) -> None:
    res = join(
        sfu.url, "--room", "room2", "--token", issue_token(SECRET, "room1", "Eve"),
        "--duration", "5",
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "token-wrong-room" in res.stderr and "Traceback" not in res.stderr


def test_unreachable_server_exits_1() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = join(f"ws://127.0.0.1:{port}", "--room", "r", "--duration", "5", CALLPIPE_SECRET=SECRET)
    assert res.returncode == 1, res.stderr
    assert "callpipe: error: cannot join room 'r'" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_camera_is_a_clear_error() -> None:
    res = join(
        "ws://127.0.0.1:1", "--room", "r", "--camera", "/dev/no-such-camera",
        CALLPIPE_SECRET=SECRET,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "callpipe: error:" in res.stderr and "/dev/no-such-camera" in res.stderr


def test_file_sender_and_synthetic_sender_see_each_other(sfu: SfuProcess, tmp_path: Path) -> None:
    clip = tmp_path / "clip.webm"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=15",
         "-t", "1", "-c:v", "libvpx", "-b:v", "200k", str(clip)],
        check=True, timeout=60,
    )  # fmt: skip
    # Bob (synthetic) runs until SIGTERM; Alice sends the file (video only) for 3 s
    bob_summary, alice_summary = tmp_path / "bob.json", tmp_path / "alice.json"
    alice_jsonl = tmp_path / "alice.jsonl"
    bob = subprocess.Popen(
        [*PY, "join", sfu.url, "--room", "pair", "--name", "Bob", "--synthetic",
         "--width", "160", "--height", "120", "--fps", "15", "--bitrate", "150",
         "--stats-interval", "0.5", "--summary", str(bob_summary)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env(CALLPIPE_SECRET=SECRET),
    )  # fmt: skip
    try:
        alice = join(
            sfu.url, "--room", "pair", "--name", "Alice", "--file", str(clip), "--no-audio",
            "--bitrate", "150", "--duration", "3", "--stats-interval", "0.5",
            "--stats-jsonl", str(alice_jsonl), "--summary", str(alice_summary),
            CALLPIPE_SECRET=SECRET,
        )  # fmt: skip
        assert alice.returncode == 0, alice.stderr + sfu.stderr()
        time.sleep(0.2)
        bob.send_signal(signal.SIGTERM)
        out, err = bob.communicate(timeout=20)
    finally:
        if bob.poll() is None:
            bob.kill()
            bob.communicate()
    assert bob.returncode == 0, err + sfu.stderr()
    assert out == ""  # human output goes to stderr
    assert f"emoji: {' '.join(json.loads(alice_summary.read_text())['emoji'])}" in alice.stderr
    assert "Alice" in err and "left" in err

    a = json.loads(alice_summary.read_text())
    b = json.loads(bob_summary.read_text())
    assert a["name"] == "Alice" and b["name"] == "Bob"
    # each one decoded the other's video
    assert a["received"][b["id"]]["framesDecoded"] > 0
    assert a["received"][b["id"]]["latencyMsP50"] is not None  # synthetic frames are stamped
    got = b["received"][a["id"]]
    assert got["name"] == "Alice" and got["framesDecoded"] > 0
    assert got["latencyMsP50"] is None  # the file carries no stamps
    assert a["sent"]["audio"] is None and a["sent"]["video"]["framesEncoded"] > 0
    assert b["sent"]["audio"]["packetsSent"] > 0
    assert len(a["emoji"]) == 4
    lines = [json.loads(ln) for ln in alice_jsonl.read_text().splitlines()]
    assert len(lines) >= 4
    assert all(ln["id"] == a["id"] and "timestamp" in ln and "received" in ln for ln in lines)
    assert lines[-1]["timestamp"] > lines[0]["timestamp"]
