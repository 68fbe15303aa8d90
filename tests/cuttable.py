"""A TCP path that can be cut and restored, for signaling that breaks while a test's processes run on.

``CuttableTcp(target_port)`` listens on a loopback port of its own and relays each connection to the target;
:meth:`CuttableTcp.cut` resets every relayed connection and every new one until :meth:`CuttableTcp.restore`.
Media (UDP, peer to peer) does not pass through it: only what was pointed at its port is cut.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"
CHUNK = 65536


class CuttableTcp:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._pumps: set[asyncio.Task[None]] = set()
        self.cut_off = False

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._relay, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
        self._reset_all()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    def cut(self) -> None:
        """Reset every connection through here, and every new one until :meth:`restore`."""
        self.cut_off = True
        self._reset_all()

    def restore(self) -> None:
        self.cut_off = False

    def _reset_all(self) -> None:
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.transport.abort()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(HOST, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._open.update({writer, target_writer})
        pumps = [
            asyncio.ensure_future(self._pump(reader, target_writer)),
            asyncio.ensure_future(self._pump(target_reader, writer)),
        ]
        self._pumps.update(pumps)
        for pump in pumps:
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()  # one side gone: the other goes too, as a broken path would
        self._open.discard(writer)
