"""What a share's tile needs, as the ``constraints`` the room sends its sender (receiver-driven quality).

The room window watches each track at the size its tile shows it (:meth:`TrackSink.watch`); that box,
in device pixels, is all the room needs to know. A tile as large as most of a 720p screen gets the full
frame rate; a smaller one (a 2x2 grid, the spotlight's strip) gets 30 fps, which is what people read
slides and follow a pointer at, and frees the sender's encoder and the box's decoder for the others. The
bitrate follows the pixels sent (0.1 bit per pixel and frame, x264's rule of thumb for screen content at
good quality). A track no tile shows (a fifth share, waiting) is asked for a thumbnail's worth.
"""

from __future__ import annotations

from coalesce_common.protocol import Constraints
from coalesce_receiver.models.room import Size, fit_size

FULL_RATE_PIXELS = 1280 * 720 * 0.9
"""A tile at least this large (in device pixels) gets :data:`FULL_FPS`; smaller ones :data:`TILE_FPS`."""
FULL_FPS = 60.0
TILE_FPS = 30.0
BITS_PER_PIXEL = 0.1
MIN_BITRATE = 300_000
MAX_BITRATE = 12_000_000
UNSHOWN = Constraints(track="screen", max_width=320, max_height=180, max_fps=5, max_bitrate=150_000)
"""What a track no tile shows is asked for (with its own ``track``)."""
DEBOUNCE_S = 0.1
"""How long the layout must stay put before the room tells senders (a resize sends one message, not 30)."""


def constraints_for(
    track: str, box: Size | None, *, frame: Size | None = None, keyframe: bool = True
) -> Constraints:
    """The ``constraints`` for ``track`` shown in a tile of ``box`` (``None``: not shown).

    With the track's ``frame`` size known, the rate and bitrate follow the picture as it is shown (its
    aspect fitted into the box) rather than the box: two 16:9 shares side by side on a 1080p screen
    show 960x540 pictures in 960x1080 boxes, and get 30 fps and about 1.6 Mbit/s each, not 60 and 6.
    """
    if box is None:
        return Constraints(
            track=track,
            max_width=UNSHOWN.max_width,
            max_height=UNSHOWN.max_height,
            max_fps=UNSHOWN.max_fps,
            max_bitrate=UNSHOWN.max_bitrate,
        )
    width, height = max(16, min(7680, box[0])), max(16, min(4320, box[1]))
    shown_w, shown_h = fit_size(frame, (width, height)) if frame else (width, height)
    fps = FULL_FPS if shown_w * shown_h >= FULL_RATE_PIXELS else TILE_FPS
    bitrate = round(shown_w * shown_h * fps * BITS_PER_PIXEL)
    return Constraints(
        track=track,
        max_width=width,
        max_height=height,
        max_fps=fps,
        max_bitrate=max(MIN_BITRATE, min(MAX_BITRATE, bitrate)),
        keyframe=keyframe,
    )
