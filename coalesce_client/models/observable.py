"""The subscribe/notify base of the sender's models: views subscribe, the controller changes, views redraw."""

from __future__ import annotations

from collections.abc import Callable

Listener = Callable[[], None]


class Observable:
    """Calls every subscribed listener after each change (listeners read the new state themselves)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` after every change; returns a function that unsubscribes (idempotent)."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener()
