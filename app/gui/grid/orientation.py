"""How every pane shows its image: rotated by quarter turns and flipped, all panes together (as reading
software lets radiologists orient a series). A 2×2 integer matrix from image pixels to display; the
panes apply it as the ImageItems' transform, so pixel readouts map back through it."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRectF
from PySide6.QtGui import QTransform

IDENTITY = ((1, 0), (0, 1))
CLOCKWISE = ((0, -1), (1, 0))  # with y pointing down, as in the views: right -> down -> left
MIRROR_H = ((-1, 0), (0, 1))
MIRROR_V = ((1, 0), (0, -1))


def _times(a, b):
    return tuple(tuple(sum(a[i][k] * b[k][j] for k in range(2)) for j in range(2)) for i in range(2))


@dataclass(frozen=True)
class Orientation:
    """``matrix`` maps an image pixel offset (x = column, y = row) to its offset on screen."""

    matrix: tuple[tuple[int, int], tuple[int, int]] = IDENTITY

    def rotated(self) -> "Orientation":
        """A quarter turn clockwise of what is on screen."""
        return Orientation(_times(CLOCKWISE, self.matrix))

    def flipped(self, horizontal: bool) -> "Orientation":
        """What is on screen mirrored left-right (``horizontal``) or top-bottom."""
        return Orientation(_times(MIRROR_H if horizontal else MIRROR_V, self.matrix))

    @property
    def text(self) -> str:
        """The matrix as four numbers, row by row (``"0 -1 1 0"``), as the settings keep it."""
        return " ".join(str(v) for row in self.matrix for v in row)

    @classmethod
    def parse(cls, text: str) -> "Orientation":
        """The orientation ``text`` names; upright for anything that is not a turn or flip (a
        hand-edited settings file must not stop the viewer)."""
        try:
            a, b, c, d = (int(v) for v in text.split())
        except ValueError:
            return cls()
        turn_or_flip = a * b == 0 and c * d == 0 and a * d - b * c in (1, -1)
        return cls(((a, b), (c, d))) if turn_or_flip else cls()

    def transform(self, h: int, w: int) -> QTransform:
        """The ImageItem transform for an ``[h, w]`` image: turned and flipped, its corner at (0, 0)."""
        (a, b), (c, d) = self.matrix
        t = QTransform(a, c, b, d, 0, 0)  # Qt maps (x, y) to (m11 x + m21 y, m12 x + m22 y)
        r = t.mapRect(QRectF(0, 0, w, h))
        return QTransform(a, c, b, d, -r.left(), -r.top())

