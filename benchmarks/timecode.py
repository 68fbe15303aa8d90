"""The machine-readable timestamp strip the pattern paints and the receivers read back.

A strip is 2 lines of 32 square cells, each line followed by its complement (white where the line is
black and back), so a bit is read by comparing two cells instead of against a fixed threshold: that
survives the brightness and contrast shifts of lossy coding and colour conversion. The 64 bits are

    4 sync bits (1010) | 32-bit timestamp | 16-bit frame counter | 8-bit CRC | 4 sync bits (0101)

The timestamp is the low 32 bits of ``CLOCK_MONOTONIC`` in milliseconds (``time.monotonic()``: one clock
for every process on a machine), taken when the pattern paints the frame; the counter goes up by one per
painted frame, so gaps show frames that never reached the receiver. A strip that is torn, blurred or
blocky enough to flip a bit fails the sync, the margin check or the CRC and reads as ``None``, never as a
wrong value (but for a 1 in 256 CRC collision on an already illegible strip).

Cells are 8, 16 or 24 pixels square (by screen width), aligned to a 16-pixel grid so they sit on codec
block boundaries; :func:`strip_geometry` gives the layout, which both sides derive from the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CELLS_PER_LINE = 32
LINES = 2
ROWS = 2 * LINES  # each line and its complement
SYNC_HEAD = (1, 0, 1, 0)
SYNC_TAIL = (0, 1, 0, 1)
TIMESTAMP_BITS = 32
COUNTER_BITS = 16
CRC_BITS = 8
TIMESTAMP_MODULUS = 1 << TIMESTAMP_BITS
COUNTER_MODULUS = 1 << COUNTER_BITS
MIN_MARGIN = 40
"""Least difference (of 0..255 luma) between a cell and its complement for the bit to count as read."""

WHITE = 255
BLACK = 0


@dataclass(frozen=True)
class StripGeometry:
    """Where the strip is in a frame: top-left corner and cell size, in pixels."""

    left: int
    top: int
    cell: int

    @property
    def width(self) -> int:
        return CELLS_PER_LINE * self.cell

    @property
    def height(self) -> int:
        return ROWS * self.cell

    @property
    def bottom(self) -> int:
        return self.top + self.height

    @property
    def right(self) -> int:
        return self.left + self.width


def strip_geometry(width: int, height: int) -> StripGeometry:
    """The strip's layout on a ``width`` x ``height`` screen (the same for the painter and the readers)."""
    cell = 8 if width < 640 else 16 if width < 1600 else 24
    geometry = StripGeometry(left=16, top=16, cell=cell)
    if geometry.right > width or geometry.bottom > height:
        raise ValueError(f"a {width}x{height} screen is too small for the timestamp strip")
    return geometry


def crc8(data: bytes) -> int:
    """CRC-8 with polynomial 0x07 (as in SMBus), initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _payload(timestamp_ms: int, counter: int) -> bytes:
    return (timestamp_ms % TIMESTAMP_MODULUS).to_bytes(4, "big") + (counter % COUNTER_MODULUS).to_bytes(
        2, "big"
    )


def _bits(value: int, count: int) -> list[int]:
    return [(value >> (count - 1 - i)) & 1 for i in range(count)]


def encode_bits(timestamp_ms: int, counter: int) -> list[int]:
    """The 64 bits of a strip, first line then second, most significant bit first."""
    timestamp_ms %= TIMESTAMP_MODULUS
    counter %= COUNTER_MODULUS
    crc = crc8(_payload(timestamp_ms, counter))
    bits = [
        *SYNC_HEAD,
        *_bits(timestamp_ms, TIMESTAMP_BITS),
        *_bits(counter, COUNTER_BITS),
        *_bits(crc, CRC_BITS),
        *SYNC_TAIL,
    ]
    assert len(bits) == LINES * CELLS_PER_LINE
    return bits


def strip_cells(timestamp_ms: int, counter: int) -> np.ndarray:
    """The strip as a (4, 32) array of luma values: line 1, its complement, line 2, its complement."""
    bits = np.array(encode_bits(timestamp_ms, counter), dtype=np.uint8).reshape(LINES, CELLS_PER_LINE)
    rows = np.empty((ROWS, CELLS_PER_LINE), dtype=np.uint8)
    rows[0::2] = bits * WHITE
    rows[1::2] = (1 - bits) * WHITE
    return rows


def render_strip(image: np.ndarray, timestamp_ms: int, counter: int) -> None:
    """Paint the strip into ``image`` (h, w) or (h, w, channels), in place; for tests and tools."""
    geometry = strip_geometry(image.shape[1], image.shape[0])
    cells = strip_cells(timestamp_ms, counter)
    block = np.kron(cells, np.ones((geometry.cell, geometry.cell), dtype=np.uint8))
    region = image[geometry.top : geometry.bottom, geometry.left : geometry.right]
    if image.ndim == 3:
        region[...] = block[:, :, None]
    else:
        region[...] = block


@dataclass(frozen=True)
class Timecode:
    timestamp_ms: int
    counter: int


def read_cells(luma: np.ndarray, geometry: StripGeometry) -> np.ndarray:
    """Mean luma of the middle half of every cell, as a (4, 32) float array."""
    cell = geometry.cell
    region = luma[geometry.top : geometry.bottom, geometry.left : geometry.right]
    cells = region.reshape(ROWS, cell, CELLS_PER_LINE, cell)
    inner = slice(cell // 4, cell - cell // 4)
    means: np.ndarray = cells[:, inner, :, inner].mean(axis=(1, 3), dtype=np.float32)
    return means


def decode(luma: np.ndarray, geometry: StripGeometry | None = None) -> Timecode | None:
    """Read the strip from a luma (Y, or grey) image of the whole screen; ``None`` if it is illegible."""
    if geometry is None:
        geometry = strip_geometry(luma.shape[1], luma.shape[0])
    if luma.shape[0] < geometry.bottom or luma.shape[1] < geometry.right:
        return None
    means = read_cells(luma, geometry)
    difference = means[0::2] - means[1::2]
    if float(np.abs(difference).min()) < MIN_MARGIN:
        return None
    bits = (difference > 0).astype(np.uint8).ravel().tolist()
    if tuple(bits[:4]) != SYNC_HEAD or tuple(bits[-4:]) != SYNC_TAIL:
        return None
    value = 0
    for bit in bits[4:-4]:
        value = (value << 1) | bit
    crc = value & 0xFF
    counter = (value >> CRC_BITS) & (COUNTER_MODULUS - 1)
    timestamp_ms = value >> (CRC_BITS + COUNTER_BITS)
    if crc8(_payload(timestamp_ms, counter)) != crc:
        return None
    return Timecode(timestamp_ms, counter)


def age_ms(timestamp_ms: int, now_ms: float) -> float:
    """Milliseconds from ``timestamp_ms`` (32-bit, wrapping) to ``now_ms`` on the same clock."""
    return (now_ms - timestamp_ms) % TIMESTAMP_MODULUS
