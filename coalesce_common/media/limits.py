"""What the room asks of one outgoing stream, and how the sending side carries it to its encoder.

The room knows what each share's tile needs: a picture in a quarter of a 1080p screen is 960x540 at
most, and a share waiting off screen needs next to nothing. It says so in a ``constraints`` message
(:class:`coalesce_common.protocol.Constraints`, as Jitsi's receiver constraints and LiveKit's adaptive
stream do); the sender turns it into :class:`StreamLimits` on the track. The capture thread then scales
each frame down before colour conversion and grabs no faster than ``max_fps``, so encoding (the sender's
largest cost) shrinks with the tile, and the bitrate cap goes to the encoder in the frame itself
(:class:`FrameHints` in ``frame.opaque``: aiortc has no ``setParameters``, and its encoder is made
inside its RTP sender, out of our reach).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """The most a stream may be: frame size, frame rate and bitrate (bit/s)."""

    max_width: int
    max_height: int
    max_fps: float
    max_bitrate: int

    def fit(self, width: int, height: int) -> tuple[int, int] | None:
        """The size a ``width`` x ``height`` frame is scaled down to (even, the aspect kept), or ``None``
        when it already fits."""
        if width <= self.max_width and height <= self.max_height:
            return None
        scale = min(self.max_width / width, self.max_height / height)
        return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


@dataclass(frozen=True, slots=True)
class FrameHints:
    """What a frame tells our encoder besides its pixels (``frame.opaque``): the room's bitrate cap, and
    whether the room asked for a key frame (after a layout change, so the tile's new size starts clean)."""

    max_bitrate: int | None = None
    keyframe: bool = False


def hints_of(frame: object) -> FrameHints | None:
    """The :class:`FrameHints` a frame carries, if any."""
    opaque = getattr(frame, "opaque", None)
    return opaque if isinstance(opaque, FrameHints) else None
