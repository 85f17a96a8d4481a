"""The `callpipe` console script, run as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from callpipe.media.png import read_png


def callpipe(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callpipe.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def test_help_lists_every_command_with_one_line() -> None:
    res = callpipe("--help")
    assert res.returncode == 0
    for cmd in ("demo", "bench", "doctor"):
        line = next(ln for ln in res.stdout.splitlines() if ln.strip().startswith(cmd + " "))
        assert len(line.split(None, 1)[1]) > 20  # a real one-line description


def test_no_command_prints_help_and_fails() -> None:
    res = callpipe()
    assert res.returncode == 2 and "commands" in res.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["demo", "--width", "abc"],
        ["bench", "nosuchsuite"],
        ["frobnicate"],
        ["bench", "codecs", "--threads", "one"],
    ],
)
def test_bad_arguments_exit_2_with_a_message(args: list[str]) -> None:
    res = callpipe(*args)
    assert res.returncode == 2
    assert "error:" in res.stderr and "Traceback" not in res.stderr


def test_doctor_reports_runtime_libraries() -> None:
    res = callpipe("doctor", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    info = json.loads(res.stdout)
    assert info["ok"] is True
    assert all(v == "ok" for v in info["native_modules"].values())
    assert info["libraries"]["libvpx"].startswith("v1.")
    assert info["libraries"]["libopus"].startswith("libopus 1.")
    assert info["libraries"]["openssl"].startswith("OpenSSL 3")
    assert set(info["cpu"]) >= {"SSE4.1", "AVX2", "AES-NI"}
    text = callpipe("doctor")
    assert text.returncode == 0 and "all native modules load" in text.stdout


def test_codec_demo_runs_and_writes_its_outputs(tmp_path: str) -> None:
    out = os.path.join(tmp_path, "demo")
    res = callpipe(
        "demo",
        "--codec",
        "--out",
        out,
        "--duration",
        "1",
        "--width",
        "320",
        "--height",
        "240",
        "--bitrate",
        "500",
    )
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads(open(os.path.join(out, "summary.json")).read())
    assert summary["ok"] is True
    assert summary["video"]["framesDecoded"] == summary["video"]["frames"] == 30
    assert summary["video"]["stampsRecovered"] == 30
    assert summary["video"]["psnrDbMean"] > 30
    assert summary["audio"]["correlation"] > 0.9
    png = read_png(os.path.join(out, "demo.png"))
    assert png.shape == (240, 640, 3)
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=codec_name,width,nb_read_frames",
            "-of",
            "json",
            os.path.join(out, "demo.ivf"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    stream = json.loads(probe.stdout)["streams"][0]
    assert stream["codec_name"] == "vp8" and stream["width"] == 320
    assert int(stream["nb_read_frames"]) == 30


def test_bench_quick_reports_every_comparison(tmp_path: str) -> None:
    raw = os.path.join(tmp_path, "bench.json")
    md = os.path.join(tmp_path, "bench.md")
    res = callpipe("bench", "codecs", "--quick", "--json", raw, "--markdown", md)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads(open(raw).read())
    names = {r["reference"] for r in rows}
    assert {"vpxenc (own timer)", "vpxdec (own timer)", "PyAV libvpx", "PyAV libopus"} <= names
    for r in rows:  # every run measured something on both sides; ratio consistent with them
        assert r["ours"] and r["referenceRuns"]
        assert all(x > 0 for x in r["ours"] + r["referenceRuns"])
    report = open(md).read()
    assert "| measurement |" in report and "machine:" in report and "commit" in report


def test_comparison_reports_medians_best_runs_and_spread() -> None:
    from callpipe.benchmarking import Comparison

    c = Comparison("x", "fps", "tool", ours=[90.0, 100.0, 60.0], reference=[100.0, 110.0, 80.0],
                   target=0.97)
    assert c.ratio == 90.0 / 100.0  # medians
    assert c.best_ratio == 100.0 / 110.0  # best runs
    assert abs(c.spread - 40.0 / 90.0) < 1e-12  # the wider side: (100 - 60) / 90
    row = c.row()
    assert "**0.900×** ✗" in row and "0.909× (runs spread 44 %)" in row
    fixed = Comparison("d", "x", "oracle", ours=[1.2, 1.1], reference=[1.0, 1.0], timed=False)
    assert fixed.row().endswith("|  |")  # deterministic figures: no best-run column


def test_bench_rejects_unknown_size() -> None:
    res = callpipe("bench", "codecs", "--sizes", "4k", "--repeats", "1")
    assert res.returncode == 1 and "unknown size" in res.stderr
