"""Sender reports that place each RTP timestamp at the moment its sound or picture was captured.

A receiver lines a share's sound up with its picture through each stream's RTCP sender reports, which
pair an RTP timestamp with a moment on the sender's clock. aiortc pairs the timestamp of the last packet
sent with the moment it was *sent*. Sound and picture take different times from capture to the wire
here: a block of sound leaves 40-60 ms after this computer played it (a 20 ms capture block, up to two
more queued, the Opus frame), a frame of the screen 10-30 ms after its grab (the encoder). Lined up by send
times, the room heard the sound 67 ms behind its picture (``python -m benchmarks lipsync``) although
both were on time.

So reports here say when a timestamp was *captured*, as libwebrtc's do: a track that knows when the frame
it last gave out was captured (:class:`CaptureTimed`, the screen and the sound tracks) has the lag from
that moment to the moment its frame was encoded noted per sender (:func:`note_encoded`), and each
sender report's RTP timestamp is moved on by that lag (:func:`place_report`): the report's moment is then
the capture of its (original) timestamp. Other tracks' reports are sent as aiortc made them.

:mod:`coalesce_common.media.aiortc_patches` calls these from aiortc's sender.
"""

from __future__ import annotations

import time
import weakref
from typing import Protocol, runtime_checkable

from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtcpSrPacket


@runtime_checkable
class CaptureTimed(Protocol):
    """A track that says when the frame its last ``recv()`` returned was captured (monotonic seconds)."""

    captured_at: float | None


_lags: weakref.WeakKeyDictionary[RTCRtpSender, tuple[float, int]] = weakref.WeakKeyDictionary()
"""Per sender: seconds from the capture of its latest encoded frame to its encoding, and its clock rate."""


def note_encoded(sender: RTCRtpSender, clock_rate: int) -> None:
    """``sender`` has just encoded the frame its track gave out last (it goes on the wire now)."""
    track = sender.track
    captured_at = track.captured_at if isinstance(track, CaptureTimed) else None
    if captured_at is None:
        _lags.pop(sender, None)
        return
    _lags[sender] = (max(0.0, time.monotonic() - captured_at), clock_rate)


def capture_lag(sender: RTCRtpSender) -> float | None:
    """The lag noted for ``sender``'s latest frame, if its track is timed."""
    noted = _lags.get(sender)
    return None if noted is None else noted[0]


def place_report(sender: RTCRtpSender, report: RtcpSrPacket) -> None:
    """Make ``report``'s timestamp the one being captured at its moment, not the one being sent."""
    noted = _lags.get(sender)
    if noted is None:
        return
    lag, clock_rate = noted
    info = report.sender_info
    info.rtp_timestamp = (info.rtp_timestamp + round(lag * clock_rate)) % (1 << 32)
