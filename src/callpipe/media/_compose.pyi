"""Type stubs of the Cython module ``callpipe.media._compose`` (see _compose.pyx)."""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

_A = npt.NDArray[np.uint8]
_Colour = Sequence[int]

FIT_CONTAIN: int
FIT_COVER: int
FIT_STRETCH: int
FONT_WIDTH: int
FONT_HEIGHT: int
FONT_ADVANCE: int
MAX_DIM: int
COORD_LIMIT: int

def fill(
    y: _A, u: _A, v: _A, x: int, top: int, width: int, height: int, colour: _Colour
) -> None: ...
def shade(
    y: _A, u: _A, v: _A, x: int, top: int, width: int, height: int, keep_256: int
) -> None: ...
def scale_into(
    sy: _A, su: _A, sv: _A, y: _A, u: _A, v: _A, x: int, top: int, width: int, height: int
) -> None: ...
def text_width(text: str, scale: int = ...) -> int: ...
def text(
    y: _A,
    u: _A,
    v: _A,
    x: int,
    top: int,
    label: str,
    scale: int,
    colour: _Colour,
    clip: tuple[int, int, int, int] | None = ...,
) -> None: ...
def glyph(c: int) -> bytes: ...
def compose(
    y: _A, u: _A, v: _A, tiles: list[tuple[object, ...]], style: tuple[object, ...]
) -> None: ...
