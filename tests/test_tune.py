"""`callpipe tune`: grids in parallel processes, Optuna with a shared storage, the outputs."""

from __future__ import annotations

import csv
import io
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from callpipe.cli.main import main
from callpipe.netsim.tune import Progress, Trial, knee_point, pareto_front

VIDEO_ARGS = ["--param", "video.width=160", "--param", "video.height=96", "--param",
              "video.bitrate_kbps=200"]


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    mp = pytest.MonkeyPatch()
    mp.setenv("CALLPIPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"  # complete file
    return w, h


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_video_grid_in_two_processes_writes_the_three_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "tune"
    assert main(["tune", "--model", "steady", "--media", "video", "--duration", "3",
                 *VIDEO_ARGS, "--grid", "noise_std_devs=1,2.33", "--grid",
                 "min_playout_delay_ms=0,80", "--jobs", "2", "--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert "recommended" in cap.out and "defaults" in cap.out and "hindsight oracle" in cap.out
    assert cap.err.count("trials ") == 4  # one plain progress line per trial (no terminal)
    rows = _rows(out / "trials.csv")
    assert len(rows) == 4
    assert {(r["noise_std_devs"], r["min_playout_delay_ms"]) for r in rows} == {
        ("1", "0"), ("1", "80"), ("2.33", "0"), ("2.33", "80")}
    assert all(r["state"] == "complete" and float(r["meanDelayMs"]) > 0 for r in rows)
    assert sum(int(r["recommended"]) for r in rows) == 1
    # more playout delay, more delay
    by = {(r["noise_std_devs"], r["min_playout_delay_ms"]): float(r["meanDelayMs"])
          for r in rows}
    assert by[("1", "80")] > by[("1", "0")]
    w, h = _png_size(out / "pareto.png")
    assert (w, h) == (750, 500)
    rec = json.loads((out / "recommended.json").read_text())
    for k in ("media", "source", "objectives", "rule", "parameters", "metrics", "defaults",
              "oracleAtSameLossMs", "trials", "paretoSize", "method", "grid"):
        assert k in rec, k
    assert rec["media"] == "video" and rec["objectives"] == ["meanDelayMs", "frameLossRate"]
    assert set(rec["parameters"]) == {"noise_std_devs", "min_playout_delay_ms"}
    assert rec["trials"] == 4 and rec["method"] == "grid"


def test_optuna_trials_accumulate_in_an_explicit_sqlite_storage(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    args = ["tune", "--model", "wifi", "--media", "audio", "--codec", "none", "--duration", "4",
            "--trials", "4", "--jobs", "2", "--storage", f"sqlite:///{db}", "--study", "t1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert len(_rows(tmp_path / "a" / "trials.csv")) == 4
    assert not (tmp_path / "a" / "optuna.db").exists()  # the storage given was used
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    rows = _rows(tmp_path / "b" / "trials.csv")
    assert len(rows) == 8 and sorted(int(r["trial"]) for r in rows) == list(range(8))
    rec = json.loads((tmp_path / "b" / "recommended.json").read_text())
    assert rec["method"] == "optuna" and rec["study"] == "t1" and rec["trials"] == 8
    assert rec["objectives"] == ["meanDelayMs", "lateLossRate"]
    assert "quantile" in rec["parameters"]
    _png_size(tmp_path / "b" / "pareto.png")
    # the first trial of a new study is the defaults
    first = next(r for r in rows if r["trial"] == "0")
    assert float(first["quantile"]) == 0.95 and float(first["forget_factor"]) == 0.983
    # a study made for another task is refused
    assert main(["tune", "--model", "steady", "--media", "audio", "--codec", "none",
                 "--duration", "4", "--trials", "1", "--storage", f"sqlite:///{db}",
                 "--study", "t1", "--out", str(tmp_path / "c")]) == 1


def test_default_storage_is_a_file_in_out(tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert main(["tune", "--model", "clean", "--media", "audio", "--codec", "none",
                 "--duration", "2", "--trials", "2", "--jobs", "1", "--range",
                 "quantile=0.6:0.99", "--max-loss", "0.05", "--out", str(out)]) == 0
    assert (out / "optuna.db").exists()
    rec = json.loads((out / "recommended.json").read_text())
    assert rec["rule"].startswith("lowest mean delay")
    assert set(rec["parameters"]) == {"quantile"}


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", "--model", "clean", "--grid", "bogus=1,2", "--out",
                 str(tmp_path)]) == 1
    assert "bogus" in capsys.readouterr().err
    assert main(["tune", "--model", "clean", "--grid", "quantile=1.5", "--out",
                 str(tmp_path)]) == 1
    assert main(["tune", "--model", "clean", "--media", "audio", "--grid", "quantile=0.9",
                 "--param", "video.fps=15", "--out", str(tmp_path)]) == 1
    assert main(["tune", "--model", "clean", "--media", "video", "--objective",
                 "lateLossRate", "--grid", "nack=1", "--out", str(tmp_path)]) == 1
    with pytest.raises(SystemExit):
        main(["tune", "--model", "clean", "--out", str(tmp_path)])  # neither grid nor trials


def test_pareto_front_and_knee() -> None:
    def t(n: int, d: float, loss: float) -> Trial:
        return Trial(n, {"x": n}, {"meanDelayMs": d, "lateLossRate": loss})

    trials = [t(0, 200, 0.0), t(1, 120, 0.01), t(2, 100, 0.05), t(3, 60, 0.20),
              t(4, 130, 0.02), t(5, 80, 0.30), Trial(6, {}, {}, "failed", "boom")]
    front = pareto_front(trials, "lateLossRate")
    assert [x.number for x in front] == [0, 1, 2, 3]
    best, rule = knee_point(front, "lateLossRate")
    # scaled over the front: #1 (0.43, 0.05) is 0.43 from the corner, #2 (0.29, 0.25) 0.38
    assert best.number == 2 and "knee" in rule
    assert knee_point(front, "lateLossRate", max_loss=0.03)[0].number == 1
    assert knee_point(front, "lateLossRate", max_loss=-1)[0].number == 0


def test_progress_lines_without_a_terminal() -> None:
    s = io.StringIO()
    p = Progress(3, "trials", s)
    p.update("a")
    p.update()
    p.update("c")
    p.close()
    assert s.getvalue().splitlines() == ["trials 1/3: a", "trials 2/3", "trials 3/3: c"]
