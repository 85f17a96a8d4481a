"""Live terminal output shared by ``callpipe join`` and ``callpipe demo``.

* :func:`format_table` -- rows of cells as aligned text lines.
* :class:`LiveBlock` -- a block of lines redrawn in place on a terminal (cursor moves, no
  curses), with event lines printed above it; on a pipe or file every update is written once,
  as it is.
* small formatters for the numbers of the stats tables (``-`` for a missing value).
"""

from __future__ import annotations

import shutil
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

__all__ = ["format_table", "LiveBlock", "num", "received_rows", "ascii_label", "display_width"]


def num(value: Any, digits: int = 0, suffix: str = "") -> str:
    """``value`` with ``digits`` decimals and ``suffix``, or ``-`` when it is missing (None,
    not a number).

    :param value: the number (any unit).
    :param digits: decimals to show.
    :param suffix: text after the number (a unit).
    """
    if value is None or isinstance(value, bool):
        return "-"
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "-"
    if f != f:  # NaN
        return "-"
    return f"{f:.{digits}f}{suffix}"


def ascii_label(text: str, limit: int = 24) -> str:
    """``text`` reduced to printable ASCII (the compositor's font), at most ``limit``
    characters (non-ASCII characters become ``?``)."""
    out = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return out[:limit]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned text lines: the header, then one line per row.  The first column is
    left-aligned, the others right-aligned.

    :param header: column titles.
    :param rows: cells (already formatted), as many per row as there are titles.
    """
    widths = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    return [line(header)] + [line(r) for r in rows]


def received_rows(received: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(participant id, name, video-or-audio stats)`` per remote stream of a ``stats()``
    ``received`` mapping, video before audio, in participant order."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for pid, entry in received.items():
        if not isinstance(entry, dict):
            continue
        name = str(entry.get("name") or pid)
        for kind in ("video", "audio"):
            s = entry.get(kind)
            if isinstance(s, dict):
                rows.append((pid, name, {"kind": kind, **s}))
    return rows


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes (wide characters such as emoji count 2, combining
    marks and variation selectors 0)."""
    width = 0
    for c in text:
        if unicodedata.combining(c) or 0xFE00 <= ord(c) <= 0xFE0F or c == "\u200d":
            continue
        width += 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
    return width


class LiveBlock:
    """A block of status lines, kept up to date in place on a terminal.

    On a terminal (``stream.isatty()``), :meth:`update` erases the previous block and draws the
    new one where it was, and :meth:`event` prints a line above the block.  Otherwise both just
    write their lines (a log).

    :param stream: where to write (default: ``sys.stderr``).
    :param tty: force terminal (True) or log (False) behaviour; default: ask ``stream``.
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            try:
                tty = self.stream.isatty()
            except (AttributeError, ValueError):
                tty = False
        self.tty = bool(tty)
        self._lines: list[str] = []
        self._drawn = 0  # terminal rows the block took when last drawn

    def _erase(self) -> str:
        if not self._drawn:
            return ""
        # to the start of the first drawn line, then clear to the end of the screen
        return f"\x1b[{self._drawn}F\x1b[J"

    def _draw(self) -> str:
        cols = max(20, shutil.get_terminal_size((80, 24)).columns)
        # a line longer than the terminal wraps onto more rows
        self._drawn = sum(max(1, -(-display_width(line) // cols)) for line in self._lines)
        return "".join(line + "\n" for line in self._lines)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: output is best effort
            pass

    def update(self, lines: Sequence[str]) -> None:
        """Show ``lines`` as the current block (redrawn in place on a terminal)."""
        self._lines = list(lines)
        if self.tty:
            self._write(self._erase() + self._draw())
        else:
            self._write("".join(line + "\n" for line in self._lines))

    def event(self, line: str) -> None:
        """Print one event line (above the block on a terminal)."""
        if self.tty:
            self._write(self._erase() + line + "\n" + self._draw())
        else:
            self._write(line + "\n")

    def finish(self) -> None:
        """Leave the last block on the screen; later output goes below it."""
        self._drawn = 0
        self._lines = []
