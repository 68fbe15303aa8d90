"""The Coalesce receiver: the meeting-room box that shows incoming shares.

``services`` holds the asyncio side (signaling server, pairing throttle, media sinks, stats), ``models``
the observable room state with no Qt, ``ui`` the only Qt code, ``cli`` the ``coalesce-receiver`` command.
"""
