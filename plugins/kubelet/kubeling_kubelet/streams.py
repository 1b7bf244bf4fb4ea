"""The streaming protocols kubectl speaks to a node, served over WebSocket.

* ``v5.channel.k8s.io`` / ``v4.channel.k8s.io`` (exec, attach): each binary message starts
  with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a ``Status`` at the end,
  with the exit code), 4 resize (``{"Width": w, "Height": h}``).  v5 adds channel 255, a
  close signal: ``[255, 0]`` means the client closed stdin.
* ``SPDY/3.1+portforward.k8s.io`` (port-forward): SPDY/3.1 frames tunnelled in binary
  WebSocket messages.  For each forwarded connection the client opens an ``error`` stream
  and a ``data`` stream with headers ``streamtype``, ``port`` and ``requestid``.
* ``v4.channel.k8s.io`` / ``portforward.k8s.io`` (port-forward of WebSocket clients):
  channels 2i (data) and 2i+1 (error) for the i-th of the ``ports`` query parameter; the
  server first sends the port number (2 bytes, little-endian) on both.

Only the protocols' public descriptions were used; the code is ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from kubeling.runtime import ExecSession

log = logging.getLogger(__name__)

__all__ = [
    "CHANNEL_PROTOCOLS",
    "PORTFORWARD_PROTOCOLS",
    "SPDY_PORTFORWARD",
    "SpdySession",
    "exit_status",
    "serve_channels",
]

CHANNEL_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
SPDY_PORTFORWARD = "SPDY/3.1+portforward.k8s.io"
PORTFORWARD_PROTOCOLS = (SPDY_PORTFORWARD, "v4.channel.k8s.io", "portforward.k8s.io")

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def exit_status(code: int, command: list[str] | None = None) -> dict[str, Any]:
    """The ``Status`` sent on the error channel when a command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    what = f"error executing command {command}, " if command else ""
    return {
        "metadata": {}, "status": "Failure",
        "message": f"command terminated with non-zero exit code: {what}exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message,
            "reason": "InternalError", "code": 500}


async def serve_channels(ws: web.WebSocketResponse, session: ExecSession, *, stdin: bool,
                         stdout: bool, stderr: bool, tty: bool,
                         command: list[str] | None = None) -> int:
    """Pump a command's streams over the channel protocol; returns its exit code."""
    v5 = ws.ws_protocol == "v5.channel.k8s.io"

    async def output() -> None:
        while True:
            item = await session.read()
            if item is None:
                return
            stream, data = item
            if not data:
                continue
            if stream == STDERR and not tty:
                if stderr:
                    await ws.send_bytes(bytes([STDERR]) + data)
            elif stdout:
                await ws.send_bytes(bytes([STDOUT]) + data)

    async def input_() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break
                continue
            channel, payload = msg.data[0], msg.data[1:]
            if channel == STDIN and stdin:
                if payload:
                    await session.write_stdin(payload)
            elif channel == RESIZE:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    size = json.loads(payload)
                    await session.resize(int(size["Width"]), int(size["Height"]))
            elif channel == CLOSE and v5 and payload[:1] == bytes([STDIN]):
                await session.close_stdin()

    reader = asyncio.create_task(input_())
    writer = asyncio.create_task(output())
    try:
        await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        if not writer.done():
            # the client went away: end the command's streams (a shell reading stdin sees
            # EOF) rather than leave it running unattended
            if stdin:
                with contextlib.suppress(Exception):
                    await session.close_stdin()
            try:
                async with asyncio.timeout(2.0):
                    await asyncio.shield(writer)
            except (TimeoutError, Exception):
                writer.cancel()
                await session.close()
                return -1
        await writer
        code = await session.wait()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(bytes([ERROR]) + json.dumps(exit_status(code, command)).encode())
        return code
    finally:
        for task in (reader, writer):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await session.close()
        with contextlib.suppress(Exception):
            await ws.close()


# ---------------------------------------------------------------------------------------
# SPDY/3.1
# ---------------------------------------------------------------------------------------


def _spdy_dictionary() -> bytes:
    """The SPDY/3 header compression dictionary (1423 bytes), built from its definition:
    length-prefixed common header names, then a run of common values."""
    words = [
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset",
        "accept-encoding", "accept-language", "accept-ranges", "age", "allow", "authorization",
        "cache-control", "connection", "content-base", "content-encoding", "content-language",
        "content-length", "content-location", "content-md5", "content-range", "content-type",
        "date", "etag", "expect", "expires", "from", "host", "if-match", "if-modified-since",
        "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range",
        "referer", "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade",
        "user-agent", "vary", "via", "warning", "www-authenticate", "method", "get", "status",
    ]
    words += ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive",
              "origin"]
    tail = (
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
        "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8"
        "charset=iso-8859-1,utf-,*,enq=0.")
    return b"".join(struct.pack(">I", len(w)) + w.encode() for w in words) + tail.encode()


SPDY_DICTIONARY = _spdy_dictionary()

_SYN_STREAM, _SYN_REPLY, _RST_STREAM, _SETTINGS, _PING, _GOAWAY, _HEADERS, _WINDOW = \
    1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5
RST_PROTOCOL_ERROR = 1
MAX_CHUNK = 32 * 1024


class SpdyStream:
    """One stream of a :class:`SpdySession`: headers, received data, send helpers."""

    def __init__(self, session: SpdySession, stream_id: int, headers: dict[str, str]) -> None:
        self.session = session
        self.id = stream_id
        self.headers = headers
        self.data: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.remote_closed = False
        self.local_closed = False

    async def write(self, data: bytes) -> None:
        for i in range(0, len(data), MAX_CHUNK):
            await self.session.send_data(self.id, data[i:i + MAX_CHUNK])

    async def close(self) -> None:
        """Half-close our side (a DATA frame with FIN)."""
        if not self.local_closed:
            self.local_closed = True
            await self.session.send_data(self.id, b"", fin=True)

    async def read(self) -> bytes | None:
        return await self.data.get()


class SpdySession:
    """The server side of a SPDY/3.1 session over a byte transport.

    :param read: returns the next bytes from the peer, or None at the end.
    :param write: sends bytes to the peer (one call per frame).
    :param on_stream: called for every stream the peer opens.
    """

    def __init__(self, read: Callable[[], Awaitable[bytes | None]],
                 write: Callable[[bytes], Awaitable[None]],
                 on_stream: Callable[[SpdyStream], None]) -> None:
        self._read = read
        self._write = write
        self.on_stream = on_stream
        self.streams: dict[int, SpdyStream] = {}
        self._inflate = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zdict=SPDY_DICTIONARY)
        self._lock = asyncio.Lock()
        self.closed = False

    # -- frames out ---------------------------------------------------------------------

    def _headers_block(self, headers: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(headers)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in headers.items())
        return self._deflate.compress(raw) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    async def _send(self, frame: bytes) -> None:
        if self.closed:
            return
        async with self._lock:
            await self._write(frame)

    @staticmethod
    def _control(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8003, kind, (flags << 24) | len(payload)) + payload

    async def send_reply(self, stream_id: int, headers: dict[str, str] | None = None) -> None:
        async with self._lock:
            payload = struct.pack(">I", stream_id) + self._headers_block(headers or {})
            if not self.closed:
                await self._write(self._control(_SYN_REPLY, 0, payload))

    async def send_data(self, stream_id: int, data: bytes, *, fin: bool = False) -> None:
        header = struct.pack(">II", stream_id & 0x7FFFFFFF,
                             ((FLAG_FIN if fin else 0) << 24) | len(data))
        await self._send(header + data)

    async def send_rst(self, stream_id: int, status: int = RST_CANCEL) -> None:
        await self._send(self._control(_RST_STREAM, 0, struct.pack(">II", stream_id, status)))

    # -- frames in ----------------------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the peer goes away."""
        buf = b""

        async def need(n: int) -> bool:
            nonlocal buf
            while len(buf) < n:
                chunk = await self._read()
                if chunk is None:
                    return False
                buf += chunk
            return True

        try:
            while True:
                if not await need(8):
                    return
                first, second = struct.unpack(">II", buf[:8])
                length = second & 0xFFFFFF
                flags = second >> 24
                if not await need(8 + length):
                    return
                payload, buf = buf[8:8 + length], buf[8 + length:]
                if first & 0x80000000:
                    await self._control_frame((first >> 16) & 0x7FFF, first & 0xFFFF, flags,
                                              payload)
                else:
                    self._data_frame(first & 0x7FFFFFFF, flags, payload)
        finally:
            self.closed = True
            for stream in self.streams.values():
                if not stream.remote_closed:
                    stream.remote_closed = True
                    stream.data.put_nowait(None)

    def _decode_headers(self, block: bytes) -> dict[str, str]:
        raw = self._inflate.decompress(block)
        (count,) = struct.unpack(">I", raw[:4])
        pos = 4
        headers: dict[str, str] = {}
        for _ in range(count):
            (n,) = struct.unpack(">I", raw[pos:pos + 4])
            name = raw[pos + 4:pos + 4 + n].decode().lower()
            pos += 4 + n
            (n,) = struct.unpack(">I", raw[pos:pos + 4])
            value = raw[pos + 4:pos + 4 + n].decode()
            pos += 4 + n
            headers[name] = value.split("\x00")[0]
        return headers

    async def _control_frame(self, version: int, kind: int, flags: int,
                             payload: bytes) -> None:
        if kind == _SYN_STREAM:
            (stream_id,) = struct.unpack(">I", payload[:4])
            stream_id &= 0x7FFFFFFF
            headers = self._decode_headers(payload[10:])
            stream = SpdyStream(self, stream_id, headers)
            self.streams[stream_id] = stream
            await self.send_reply(stream_id)
            if flags & FLAG_FIN:
                stream.remote_closed = True
                stream.data.put_nowait(None)
            self.on_stream(stream)
        elif kind in (_SYN_REPLY, _HEADERS):
            with contextlib.suppress(Exception):
                self._decode_headers(payload[4:])  # keeps the shared zlib context in step
        elif kind == _RST_STREAM:
            (stream_id,) = struct.unpack(">I", payload[:4])
            stream = self.streams.get(stream_id & 0x7FFFFFFF)
            if stream is not None and not stream.remote_closed:
                stream.remote_closed = True
                stream.local_closed = True
                stream.data.put_nowait(None)
        elif kind == _PING:
            await self._send(self._control(_PING, 0, payload[:4]))
        elif kind == _GOAWAY:
            self.closed = True

    def _data_frame(self, stream_id: int, flags: int, payload: bytes) -> None:
        stream = self.streams.get(stream_id)
        if stream is None or stream.remote_closed:
            return
        if payload:
            stream.data.put_nowait(payload)
        if flags & FLAG_FIN:
            stream.remote_closed = True
            stream.data.put_nowait(None)
