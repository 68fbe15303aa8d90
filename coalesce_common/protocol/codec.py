"""JSON encoding and strict parsing of signaling messages.

``parse`` accepts only a JSON object of at most ``MAX_MESSAGE_SIZE`` bytes whose ``type`` names a known
message and whose members are exactly that message's fields, of the right types and within their
length limits. Anything else raises :class:`ProtocolError` with a precise message and a stable code.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from typing import Any

from coalesce_common.errors import MessageTooLarge, ProtocolError
from coalesce_common.protocol.messages import (
    DEFAULT_STRING_LIMIT,
    MESSAGE_TYPES,
    NAME_LIMIT,
    TRACK_KINDS,
    VIDEO_KINDS,
    Constraints,
    Message,
    Offer,
    RoomCommand,
    RoomControl,
    RoomState,
)

MAX_MESSAGE_SIZE = 64 * 1024
"""Largest signaling message accepted, in bytes of UTF-8 JSON (an SDP offer with two tracks is ~6 KiB)."""


def encode(message: Message) -> str:
    """Return the JSON wire form of ``message``.

    A field at its default is left out (the parser fills it in), so a field added later reaches only
    peers that asked for what it does: a receiver that predates ``hello.replace_oldest`` still takes
    the hello of a sender that does not use it, where strict parsing would refuse an unknown field.
    """
    body: dict[str, Any] = {"type": message.TYPE}
    for f in dataclasses.fields(message):
        value = getattr(message, f.name)
        if _is_default(f, value):
            continue
        body[f.name] = value.value if isinstance(value, enum.Enum) else value
    return json.dumps(body, separators=(",", ":"))


def _is_default(f: dataclasses.Field[Any], value: Any) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value == f.default_factory())
    return False


MAX_NESTING = 4
"""Deepest nesting of JSON objects and arrays a message may have (ours have 2); deeper is refused before
``json.loads`` runs, whose recursion a few thousand brackets would exhaust."""


def parse(data: str | bytes, max_size: int = MAX_MESSAGE_SIZE) -> Message:
    """Parse one wire message; raise :class:`ProtocolError` (or :class:`MessageTooLarge`) if invalid."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_size:
        raise MessageTooLarge(size, max_size)
    try:
        text = data if isinstance(data, str) else data.decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("not valid UTF-8", code="malformed") from exc
    if _nesting(text) > MAX_NESTING:
        raise ProtocolError(f"nested deeper than {MAX_NESTING} levels", code="malformed")
    try:
        body = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not valid JSON: {exc}", code="malformed") from exc
    if not isinstance(body, dict):
        raise ProtocolError("a message must be a JSON object", code="malformed")
    kind = body.pop("type", None)
    if not isinstance(kind, str):
        raise ProtocolError("a message needs a string 'type'", code="malformed")
    cls = MESSAGE_TYPES.get(kind)
    if cls is None:
        raise ProtocolError(f"unknown message type {kind[:32]!r}", code="unknown-type")
    try:
        return _build(cls, kind, body)
    except ProtocolError as exc:
        exc.message_type = kind  # the session refuses a bad session-control message without ending
        raise


def _build(cls: type[Message], kind: str, body: dict[str, Any]) -> Message:
    hints = _hints(cls)
    unknown = set(body) - set(hints)
    if unknown:
        raise ProtocolError(f"{kind}: unexpected field(s) {sorted(unknown)[:5]}", code="malformed")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in body:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ProtocolError(f"{kind}: missing field {f.name!r}", code="malformed")
            continue
        limit = cls.LIMITS.get(f.name, DEFAULT_STRING_LIMIT)
        values[f.name] = _check(kind, f.name, hints[f.name], body[f.name], limit)
        if f.name in cls.RANGES:
            low, high = cls.RANGES[f.name]
            if not low <= values[f.name] <= high:
                raise ProtocolError(f"{kind}.{f.name} must be between {low:g} and {high:g}", code="malformed")
    message = cls(**values)
    if isinstance(message, Offer):
        bad = set(message.tracks.values()) - TRACK_KINDS
        if bad:
            raise ProtocolError(f"offer: unknown track kind(s) {sorted(bad)[:4]}", code="malformed")
    if isinstance(message, Constraints) and message.track not in VIDEO_KINDS:
        raise ProtocolError(f"constraints: unknown track {message.track[:16]!r}", code="malformed")
    if isinstance(message, RoomState) and (
        len(message.paused) != len(message.names)
        or len(message.waiting_ids) != len(message.waiting)
        or (message.sound and len(message.sound) != len(message.names))
    ):
        why = "each name needs its paused flag (and sound flag, if any), each waiting sender its id"
        raise ProtocolError(f"room: {why}", code="malformed")
    if isinstance(message, RoomControl) and (lacking := _needs_tiles(message)):
        raise ProtocolError(f"room-control: {message.command} needs {lacking}", code="malformed")
    return message


_NO_TILE_NEEDED = {RoomCommand.GRID, RoomCommand.MUTE, RoomCommand.UNMUTE, RoomCommand.LISTEN}
"""Commands about the whole room (``listen`` without a tile: back to the spotlit share's sound)."""


def _needs_tiles(message: RoomControl) -> str:
    """What a ``room-control`` lacks ("" when it has what its command needs)."""
    if message.command in _NO_TILE_NEEDED:
        return ""
    if not message.tile:
        return "a tile"
    if message.command is RoomCommand.SWAP and not message.other:
        return "another tile to swap with"
    return ""


def _nesting(text: str) -> int:
    """The deepest nesting of ``{``/``[`` in JSON ``text``, brackets inside strings not counted."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}]":
            depth -= 1
    return deepest


_HINTS: dict[str, dict[str, Any]] = {}


def _hints(cls: type[Message]) -> dict[str, Any]:
    if cls.TYPE not in _HINTS:
        _HINTS[cls.TYPE] = {f.name: typing.get_type_hints(cls)[f.name] for f in dataclasses.fields(cls)}
    return _HINTS[cls.TYPE]


def _check(kind: str, name: str, hint: Any, value: Any, limit: int) -> Any:
    where = f"{kind}.{name}"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _check(kind, name, inner, value, limit)
    if hint is bool:
        if not isinstance(value, bool):
            raise ProtocolError(f"{where} must be a boolean", code="malformed")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProtocolError(f"{where} must be an integer", code="malformed")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ProtocolError(f"{where} must be a number", code="malformed")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ProtocolError(f"{where} must be a string", code="malformed")
        if len(value) > limit:
            raise ProtocolError(f"{where} is longer than {limit} characters", code="malformed")
        return value
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        try:
            return hint(value)
        except ValueError as exc:
            raise ProtocolError(f"{where}: unknown value {str(value)[:32]!r}", code="malformed") from exc
    if origin is tuple:  # tuple[X, ...]: an array of at most ``limit`` items, strings as short as names
        if not isinstance(value, list) or len(value) > limit:
            raise ProtocolError(f"{where} must be an array of at most {limit} items", code="malformed")
        (item, _) = typing.get_args(hint)
        return tuple(_check(kind, name, item, v, NAME_LIMIT) for v in value)
    if origin is dict:
        if not isinstance(value, dict) or len(value) > limit:
            raise ProtocolError(f"{where} must be an object of at most {limit} entries", code="malformed")
        for key, item in value.items():
            if not isinstance(item, str) or len(key) > 16 or len(item) > 16:
                raise ProtocolError(f"{where} must map short strings to short strings", code="malformed")
        return dict(value)
    raise TypeError(f"unsupported field type {hint!r} for {where}")  # a bug in messages.py, not peer input
