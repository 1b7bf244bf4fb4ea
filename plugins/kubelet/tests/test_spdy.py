"""The SPDY/3.1 server session: frames, header compression with the SPDY dictionary,
replies, data in both directions, FIN, RST and PING."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import zlib

from kubeling_kubelet.streams import SPDY_DICTIONARY, SpdySession, SpdyStream


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(SPDY_DICTIONARY) == 1423
    assert hashlib.sha256(SPDY_DICTIONARY).hexdigest().startswith("51d27341373f923f")


class Client:
    """A minimal SPDY client side, for driving the session."""

    def __init__(self) -> None:
        self.deflate = zlib.compressobj(zdict=SPDY_DICTIONARY)
        self.inflate = zlib.decompressobj(zdict=SPDY_DICTIONARY)

    def headers(self, pairs: dict[str, str]) -> bytes:
        raw = struct.pack(">I", len(pairs)) + b"".join(
            struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
            for k, v in pairs.items())
        return self.deflate.compress(raw) + self.deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_stream(self, stream_id: int, pairs: dict[str, str], fin: bool = False) -> bytes:
        payload = struct.pack(">IIH", stream_id, 0, 0) + self.headers(pairs)
        return struct.pack(">HHI", 0x8003, 1, ((1 if fin else 0) << 24) | len(payload)) + \
            payload

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id, ((1 if fin else 0) << 24) | len(data)) + data


def parse(frames: bytes) -> list[tuple]:
    out = []
    while frames:
        first, second = struct.unpack(">II", frames[:8])
        length = second & 0xFFFFFF
        payload, frames = frames[8:8 + length], frames[8 + length:]
        if first & 0x80000000:
            out.append(("control", first & 0xFFFF, second >> 24, payload))
        else:
            out.append(("data", first, second >> 24, payload))
    return out


async def test_session_round_trip() -> None:
    client = Client()
    incoming: asyncio.Queue[bytes | None] = asyncio.Queue()
    sent: list[bytes] = []
    streams: list[SpdyStream] = []

    async def write(data: bytes) -> None:
        sent.append(data)

    session = SpdySession(incoming.get, write, streams.append)
    task = asyncio.create_task(session.run())
    frame = client.syn_stream(1, {"streamtype": "data", "port": "80", "requestid": "0"})
    # a frame may arrive split across messages
    await incoming.put(frame[:5])
    await incoming.put(frame[5:] + client.data(1, b"hello") + client.data(1, b"", fin=True))
    await incoming.put(struct.pack(">HHI", 0x8003, 6, 4) + struct.pack(">I", 7))  # PING
    await asyncio.sleep(0.05)
    assert len(streams) == 1
    stream = streams[0]
    assert stream.headers == {"streamtype": "data", "port": "80", "requestid": "0"}
    assert await stream.read() == b"hello"
    assert await stream.read() is None
    await stream.write(b"world")
    await stream.close()
    await incoming.put(client.syn_stream(3, {"streamtype": "error", "requestid": "1"},
                                         fin=True))
    await incoming.put(None)
    await task
    frames = parse(b"".join(sent))
    kinds = [(f[0], f[1]) for f in frames]
    assert ("control", 2) in kinds  # SYN_REPLY
    reply = next(f for f in frames if f[:2] == ("control", 2))
    assert struct.unpack(">I", reply[3][:4])[0] == 1
    assert client.inflate.decompress(reply[3][4:]) == b"\x00\x00\x00\x00"
    assert ("control", 6) in kinds  # the PING answered
    data = [f for f in frames if f[0] == "data"]
    assert data[0][3] == b"world" and data[-1][2] == 1 and data[-1][3] == b""
    assert len(streams) == 2 and await streams[1].read() is None
