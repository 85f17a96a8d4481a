"""`callpipe simulate`: reports from models, CSV and pcap traces; errors."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from callpipe.cli.main import main

KEYS = (
    "packets", "packetsLost", "packetsDiscarded", "meanDelayMs", "concealedSamplesRatio",
    "jitterBufferDelay", "jitterBufferTargetDelay", "jitterBufferEmittedCount",
    "concealedSamples", "silentConcealedSamples", "concealmentEvents",
    "insertedSamplesForDeceleration", "removedSamplesForAcceleration", "lateLossRate",
    "baselines", "oracleAtSameLateLoss",
)


def test_model_run_as_a_real_process(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    res = subprocess.run(
        [sys.executable, "-m", "callpipe.cli.main", "simulate", "--model", "wifi", "--media",
         "audio", "--duration", "8", "--param", "quantile=0.9", "--param",
         "net.spike_rate_per_min=10", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "mean delay" in res.stdout and "oracle" in res.stdout
    rep = json.loads(out.read_text())
    for k in KEYS:
        assert k in rep, k
    assert rep["packets"] == 400 and rep["config"]["quantile"] == 0.9
    assert rep["network"]["model"]["spike_rate_per_min"] == 10
    names = {b["name"] for b in rep["baselines"]}
    assert {"Ramjee alg. 1", "Ramjee alg. 4", "aiortc-like (16/4)"} <= names


def test_csv_and_pcap_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "t.csv"
    rows = ["seq,send_ms,arrival_ms"]
    for i in range(300):
        rows.append(f"{i},{i * 20},{'' if i % 25 == 7 else i * 20 + 40 + (i % 4) * 9}")
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "r.json"
    assert main(["simulate", "--trace", str(csv), "--out", str(out), "--no-baselines"]) == 0
    rep = json.loads(out.read_text())
    assert rep["packets"] == 300 and rep["packetsLost"] == 12 and rep["baselines"] == []
    assert rep["meanDelayMs"] > 40
    # the same timing as a pcap: Linux cooked capture (SLL), IPv4/UDP/RTP
    blob = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 113)
    for i in range(300):
        if i % 25 == 7:
            continue
        rtp = struct.pack("!BBHII", 0x80, 111, i, i * 960, 7) + b"\x48" + bytes(50)
        udp = struct.pack("!HHHH", 1, 2, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4),
                         bytes(4)) + udp
        frame = bytes(14) + b"\x08\x00" + ip
        at_us = (i * 20 + 40 + (i % 4) * 9) * 1000
        blob += struct.pack("<IIII", at_us // 10**6, at_us % 10**6, len(frame), len(frame)) + frame
    pcap = tmp_path / "t.pcap"
    pcap.write_bytes(blob)
    out2 = tmp_path / "r2.json"
    assert main(["simulate", "--trace", str(pcap), "--out", str(out2), "--no-baselines"]) == 0
    rep2 = json.loads(out2.read_text())
    assert rep2["packets"] == 300 and rep2["packetsLost"] == 12
    # pcap delays are relative to the fastest packet: 40 ms less than the CSV's
    assert rep2["meanDelayMs"] == pytest.approx(rep["meanDelayMs"] - 40, abs=1.0)


def test_errors_are_clear(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--model", "wifi", "--media", "video", "--param",
                 "video.bogus=1"]) == 1
    assert "unknown video parameter" in capsys.readouterr().err
    assert main(["simulate", "--model", "nosuch"]) == 1
    assert "stock models" in capsys.readouterr().err
    assert main(["simulate", "--model", "wifi", "--param", "quantile=7"]) == 1
    assert "quantile" in capsys.readouterr().err
    assert main(["simulate", "--model", "wifi", "--param", "net.bogus=1"]) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("hello\n")
    assert main(["simulate", "--trace", str(bad)]) == 1
    assert "header" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--model", "wifi", "--param", "noequals"])
