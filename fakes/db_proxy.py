"""A TCP proxy in front of PostgreSQL that tests can cut, stall and restore.

    async with TcpProxy("127.0.0.1", 5432) as proxy:   # the bot connects to proxy.port
        proxy.cut()       # every connection dropped; new ones refused until restore()
        proxy.stall()     # connections stay open but nothing passes (a hung server)
        proxy.restore()   # back to forwarding
"""

from __future__ import annotations

import asyncio
import contextlib
import enum

from fakes.lifecycle import Served

_CHUNK = 64 * 1024


class ProxyMode(enum.Enum):
    FORWARD = "forward"
    CUT = "cut"
    STALL = "stall"


class TcpProxy(Served):
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.mode = ProxyMode.FORWARD
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.connections = 0  # accepted so far

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self._drop_all()
        for task in list(self._links):
            task.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    def url(self, template: str) -> str:
        """`template` with `{port}` replaced, e.g. postgresql+asyncpg://u@127.0.0.1:{port}/db."""
        return template.format(port=self.port)

    # ---- faults ------------------------------------------------------------------------------

    def cut(self) -> None:
        """Drop every connection; refuse new ones (closed at once) until `restore()`."""
        self.mode = ProxyMode.CUT
        self._flowing.set()
        self._drop_all()

    def stall(self) -> None:
        """Keep connections open but let nothing through (a server that stopped answering)."""
        self.mode = ProxyMode.STALL
        self._flowing.clear()

    def restore(self) -> None:
        self.mode = ProxyMode.FORWARD
        self._flowing.set()

    # ---- plumbing ----------------------------------------------------------------------------

    def _drop_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode is ProxyMode.CUT:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._links.discard(task)
            for end in (writer, up_writer):
                self._writers.discard(end)
                with contextlib.suppress(Exception):
                    end.transport.abort()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while True:
            data = await source.read(_CHUNK)
            if not data:
                break
            await self._flowing.wait()  # a stall holds the bytes here
            if self.mode is ProxyMode.CUT:
                break
            sink.write(data)
            await sink.drain()
        with contextlib.suppress(Exception):
            sink.transport.abort()
