"""Benchmark harness shared by ``callpipe bench`` and ``benchmarks/``.

Benchmarks compare callpipe with a reference measured **in the same run**, interleaved
(A, B, A, B, ...), and report the ratio of medians; they never assert a speed.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Comparison", "interleave", "machine_description", "git_commit"]


@dataclass
class Comparison:
    """One callpipe-vs-reference measurement.

    :param name: what was measured (e.g. ``"vp8 encode 640x360 cpu-used -6 1 thread"``).
    :param unit: the rate's unit, e.g. ``"fps"`` or ``"frames/s"`` (higher is better).
    :param ours: callpipe's rate per run, in ``unit``.
    :param reference: the reference's rate per run, in ``unit``.
    :param reference_name: what the reference is (``"vpxenc"``, ``"PyAV libvpx"``, ...).
    :param target: the ratio callpipe aims for (ours / reference), for the report only.
    :param note: free text.
    """

    name: str
    unit: str
    reference_name: str
    ours: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    target: float | None = None
    note: str = ""
    timed: bool = True
    """The rates are timings (then the best runs' ratio is reported too); False for
    deterministic figures such as simulated delays, where runs differ by seed, not noise."""

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours)

    @property
    def reference_median(self) -> float:
        return statistics.median(self.reference)

    @property
    def ratio(self) -> float:
        """Median of callpipe's rate over the median of the reference's (higher is better)."""
        return self.ours_median / self.reference_median

    @property
    def best_ratio(self) -> float:
        """callpipe's best run over the reference's best run.  Interference from other work on
        the machine only ever slows a run down, so the best of several interleaved runs is the
        estimate least touched by it (as ``timeit`` takes the minimum); the median is the
        headline figure."""
        return max(self.ours) / max(self.reference)

    @property
    def spread(self) -> float:
        """The larger of the two sides' (max - min) / median: how much runs of the same work
        differed in this measurement (0.1 = 10 %)."""
        return max((max(v) - min(v)) / statistics.median(v)
                   for v in (self.ours, self.reference) if v and statistics.median(v) > 0)

    def row(self) -> str:
        """A Markdown table row: name, ours, reference, ratio of medians (target met or not),
        target, and the ratio of the best runs with the spread of runs."""
        target = f"≥{self.target:.2f}" if self.target is not None else ""
        met = "" if self.target is None else (" ✓" if self.ratio >= self.target else " ✗")
        best = (f"{self.best_ratio:.3f}× (runs spread {100 * self.spread:.0f} %)"
                if self.timed and len(self.ours) > 1 and len(self.reference) > 1 else "")
        return (
            f"| {self.name} | {self.ours_median:.1f} {self.unit} | {self.reference_name} "
            f"{self.reference_median:.1f} {self.unit} | **{self.ratio:.3f}×**{met} | {target} "
            f"| {best} |"
        )


def interleave(
    comparison: Comparison,
    ours: Callable[[], float],
    reference: Callable[[], float],
    repeats: int = 5,
    progress: Callable[[str], None] | None = None,
    warmup: bool = True,
) -> Comparison:
    """Run ``ours`` and ``reference`` alternately ``repeats`` times each, collecting rates.

    Each callable runs one whole measurement and returns its rate (higher is better).  The
    order alternates (A B, B A, ...) so drift in machine load hits both sides alike.  With
    ``warmup`` each side runs once first, unrecorded (page cache, CPU clocks, lazy loading).
    """
    if warmup:
        ours()
        reference()
    for i in range(repeats):
        pair = (("ours", ours), ("reference", reference))
        for side, fn in pair if i % 2 == 0 else pair[::-1]:
            getattr(comparison, side).append(fn())
        if progress:
            progress(
                f"{comparison.name}: run {i + 1}/{repeats}  ours {comparison.ours[-1]:.1f} "
                f"{comparison.reference_name} {comparison.reference[-1]:.1f} {comparison.unit}"
            )
    return comparison


def machine_description() -> str:
    """CPU model, core count and memory of this machine, one line."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        pass
    return f"{model}, {os.cpu_count()} cores{mem}, {platform.system()} {platform.release()}"


def git_commit(path: str = ".") -> str:
    """The checked-out commit (short hash, ``+dirty`` when the tree has changes), or ``unknown``."""
    try:
        rev = subprocess.run(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds one call of ``fn`` takes."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
