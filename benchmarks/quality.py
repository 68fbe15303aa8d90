"""Picture quality at the room's glass: PSNR and SSIM of a shown frame against the frame the pattern painted.

The pattern (:mod:`benchmarks.pattern`) records, in a :class:`~benchmarks.procs.PatternRecord`, the picture
it cuts every frame from and, per painted frame, the strip's counter and time and the pan's offset. A
frame is rebuilt from those exactly as the pattern drew it: the picture rolled by the offset (Qt's tiled
draw at an integer offset is a wrap-around shift) with the strip on top. The pattern saves the picture
itself rather than this module drawing it again, so the static page's Qt text needs no Qt (nor the same
fonts and hinting) here and both contents take one path. The test suite checks the rebuilt frame against
a real capture of the pattern's screen, pixel for pixel.

A snapshot (``benchmarks.glass``'s ``snapshot``: the viewer's screen, scaled back to the source size) is
compared with the frame whose strip it shows. Both are turned into BT.601 luma (0.299 R + 0.587 G +
0.114 B, full range, in floating point: no rounding of its own), and the rows from the top of the screen
down to one 16-pixel block row below the strip are left out: the strip is synthetic black and white that
changes every frame, and the codec's blocks and the viewer's scaling smear its hard edges into the rows
next to it. Chroma is not scored.

The scores come from scikit-image: ``peak_signal_noise_ratio`` with a peak of 255, and
``structural_similarity`` as Wang et al. (2004) define it (an 11-tap Gaussian window of sigma 1.5, the
population covariance), the form other tools report as "SSIM". scikit-image rather than OpenCV, whose
core has no SSIM (only the contrib module does). An identical picture has an infinite PSNR.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from benchmarks import timecode
from benchmarks.procs import PatternRecord

BT601 = np.array([0.299, 0.587, 0.114])
PEAK = 255.0
SSIM_WINDOW = 11
"""The Gaussian window's size for sigma 1.5, as scikit-image derives it."""
BLEED_ROWS = 16
"""Rows below the strip left out too: one codec block row, where the strip's edges ring and blur."""


@dataclass(frozen=True)
class FrameScore:
    psnr_db: float
    ssim: float


@dataclass(frozen=True)
class QualitySummary:
    """Medians over the snapshots that could be scored; ``None`` when none could.

    ``skipped``: snapshots whose strip was illegible, or whose strip names no frame in the log.
    """

    psnr_db: float | None
    ssim: float | None
    frames: int
    skipped: int


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB ``uint8`` picture, as float64 in 0..255."""
    result: np.ndarray = rgb.astype(np.float64) @ BT601
    return result


def first_scored_row(width: int, height: int) -> int:
    """Rows above this one (the strip's, and its bleed) are not scored."""
    return min(height, timecode.strip_geometry(width, height).bottom + BLEED_ROWS)


Rect = tuple[int, int, int, int]
"""x, y, width, height in source pixels."""


def score(picture: np.ndarray, reference: np.ndarray, covered: Iterable[Rect] = ()) -> FrameScore:
    """PSNR (dB) and SSIM of ``picture`` against ``reference``: RGB ``uint8`` pictures of the same size.

    ``covered``: parts of the picture the viewer drew something else over (a name label, a share count),
    left out like the strip's rows: the score is of the shared picture, not of the viewer's captions."""
    if picture.shape != reference.shape:
        raise ValueError(f"a {picture.shape} picture cannot be scored against a {reference.shape} reference")
    top = first_scored_row(reference.shape[1], reference.shape[0])
    shown, painted = luma(picture[top:]), luma(reference[top:])
    covered = list(covered)
    scored = _outside(shown.shape, covered, top, 0)
    # scikit-image's metrics carry no annotations (hence the ignores).
    mean_ssim, ssim_map = structural_similarity(  # type: ignore[no-untyped-call]
        painted,
        shown,
        data_range=PEAK,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    if scored.all():
        with np.errstate(divide="ignore"):  # identical pictures: an infinite PSNR, as ffmpeg's filter says
            psnr = float(peak_signal_noise_ratio(painted, shown, data_range=PEAK))  # type: ignore[no-untyped-call]
        return FrameScore(psnr, float(mean_ssim))
    mse = float(np.mean((painted[scored] - shown[scored]) ** 2))
    psnr = math.inf if mse == 0 else 10 * math.log10(PEAK**2 / mse)
    # As scikit-image's own mean does, the map's border (half a window) is left out, and so is half a
    # window round each covered part: SSIM there still sees the caption through its window.
    edge = SSIM_WINDOW // 2
    inner = np.zeros_like(scored)
    inner[edge:-edge, edge:-edge] = _outside(shown.shape, covered, top, edge)[edge:-edge, edge:-edge]
    return FrameScore(psnr, float(ssim_map[inner].mean()))


def _outside(shape: tuple[int, ...], covered: list[Rect], top: int, grow: int) -> np.ndarray:
    """True where no covered rect (grown by ``grow`` pixels, in rows counted from ``top``) reaches."""
    mask = np.ones(shape, dtype=bool)
    for x, y, width, height in covered:
        rows = slice(max(0, y - grow - top), max(0, y + height + grow - top))
        mask[rows, max(0, x - grow) : max(0, x + width + grow)] = False
    return mask


class PaintedFrames:
    """The frames a pattern painted, rebuilt on demand from its :class:`~benchmarks.procs.PatternRecord`."""

    def __init__(self, background: np.ndarray, offsets: Mapping[timecode.Timecode, tuple[int, int]]) -> None:
        self.background = background
        self._offsets = offsets

    @classmethod
    def load(cls, record: PatternRecord, wanted: Iterable[timecode.Timecode] | None = None) -> PaintedFrames:
        """Read the record; with ``wanted``, keep only those frames' lines (a long run logs many)."""
        keep = None if wanted is None else set(wanted)
        offsets: dict[timecode.Timecode, tuple[int, int]] = {}
        with record.frames_log.open() as lines:
            for line in lines:
                fields = line.split()
                if len(fields) != 4:  # the last line of a pattern killed while writing it
                    continue
                counter, stamp, dx, dy = (int(field) for field in fields)
                code = timecode.Timecode(stamp, counter)
                if keep is None or code in keep:
                    offsets[code] = (dx, dy)
        return cls(np.load(record.background), offsets)

    def reference(self, code: timecode.Timecode) -> np.ndarray | None:
        """The frame whose strip shows ``code``, as the pattern painted it; ``None`` if none was painted."""
        offset = self._offsets.get(code)
        if offset is None:
            return None
        dx, dy = offset
        frame = np.roll(self.background, (-dy, -dx), axis=(0, 1))
        timecode.render_strip(frame, code.timestamp_ms, code.counter)
        return frame


def score_snapshots(snapshots: Iterable[Mapping[str, Any]], record: PatternRecord) -> QualitySummary:
    """Score glass snapshots (``{"path", "counter", "timestamp_ms"}``, as ``snapshot`` answers, and
    optionally ``"covered"``: rects for :func:`score`) against the frames the pattern painted; medians over
    those that name a painted frame."""
    named: list[tuple[Path, timecode.Timecode, list[Rect]]] = []
    skipped = 0
    for snapshot in snapshots:
        if snapshot.get("counter") is None or snapshot.get("timestamp_ms") is None:
            skipped += 1
        else:
            code = timecode.Timecode(snapshot["timestamp_ms"], snapshot["counter"])
            covered = [tuple(rect) for rect in snapshot.get("covered", [])]
            named.append((Path(snapshot["path"]), code, covered))  # type: ignore[arg-type]
    frames = PaintedFrames.load(record, wanted=(code for _, code, _ in named))
    scores: list[FrameScore] = []
    for path, code, covered in named:
        reference = frames.reference(code)
        if reference is None:
            skipped += 1
        else:
            scores.append(score(np.load(path), reference, covered))
    if not scores:
        return QualitySummary(None, None, 0, skipped)
    return QualitySummary(
        psnr_db=statistics.median(s.psnr_db for s in scores),
        ssim=statistics.median(s.ssim for s in scores),
        frames=len(scores),
        skipped=skipped,
    )
