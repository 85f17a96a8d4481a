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
    """

    name: str
    unit: str
    reference_name: str
    ours: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    target: float | None = None
    note: str = ""

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

    def row(self) -> str:
        """A Markdown table row: name, ours, reference, ratio, target."""
        target = f"≥{self.target:.2f}" if self.target is not None else ""
        met = "" if self.target is None else (" ✓" if self.ratio >= self.target else " ✗")
        return (
            f"| {self.name} | {self.ours_median:.1f} {self.unit} | {self.reference_name} "
            f"{self.reference_median:.1f} {self.unit} | **{self.ratio:.3f}×**{met} | {target} |"
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
