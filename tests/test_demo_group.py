"""`callpipe demo`: a real SFU process and three real `callpipe join` processes on 127.0.0.1,
end-to-end encrypted; the summary, the grid picture and the grid recording it leaves behind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callpipe.media.png import read_png

PY = [sys.executable, "-m", "callpipe.cli.main"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("demo") / "out"
    res = subprocess.run(
        [*PY, "demo", "--participants", "3", "--duration", "4", "--out", str(out)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return res, out


def summary_of(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def test_demo_exits_0_and_everyone_saw_everyone(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    res, out = demo
    assert res.returncode == 0, res.stdout + res.stderr
    s = summary_of(out)
    assert s["ok"] is True and s["everyoneSawEveryone"] is True and s["missing"] == []
    people = s["participants"]
    assert len(people) == 3
    ids = [p["id"] for p in people]
    assert len(set(ids)) == 3 and all(ids)
    for p in people:
        assert p["exitCode"] == 0
        others = set(ids) - {p["id"]}
        assert set(p["received"]) == others
        for rid in others:
            got = p["received"][rid]
            assert got["framesDecoded"] > 0, (p["name"], rid, got)
            assert got["fps"] > 0
            assert got["latencyMsP50"] is not None and got["latencyMsP50"] >= 0
            assert got["jitterBufferDelayMs"] is not None and got["packetsLost"] >= 0
    # the SFU forwarded the (encrypted) media: at least every decoded frame's packets
    assert s["sfu"]["exitCode"] == 0 and s["sfu"]["forwardedPackets"] > 0
    # the live view and the final table
    assert "everyone sees everyone" in res.stderr
    assert "Alice <- Bob" in res.stdout and "emoji agree: yes" in res.stdout


def test_demo_emoji_agree(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = demo
    s = summary_of(out)
    emoji = [p["emoji"] for p in s["participants"]]
    assert all(isinstance(e, list) and len(e) == 4 for e in emoji), emoji
    assert emoji[0] == emoji[1] == emoji[2]
    assert all(isinstance(c, str) and c for c in emoji[0])
    assert s["emojiAgree"] is True


def test_demo_grid_png_shows_the_others(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, out = demo
    img = read_png(out / "grid.png")
    assert img.shape == (480, 640, 3)
    # two tiles side by side, each with a moving synthetic picture: far from a blank canvas
    for half in (img[:, :320], img[:, 320:]):
        lit = np.any(half > 40, axis=2).mean()
        assert lit > 0.3, lit
        assert half.std() > 30


def test_demo_grid_webm_decodes(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = demo
    webm = out / "grid.webm"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
         "-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json",
         str(webm)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "vp8"
    assert (stream["width"], stream["height"]) == (640, 480)
    frames = int(stream["nb_read_frames"])
    # recorded at 15 frames/s for at least the 4 s of the call
    assert frames >= 4 * 15 * 0.8, frames
    assert frames == summary_of(out)["grid"]["frames"]
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(webm), "-f", "null", "-"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr.strip() == "", decode.stderr


def test_demo_rejects_a_lonely_call(tmp_path: Path) -> None:
    res = subprocess.run(
        [*PY, "demo", "--participants", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 2 and "at least 2" in res.stderr
    assert not (tmp_path / "summary.json").exists()
