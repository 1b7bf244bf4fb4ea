"""gRPC probes: the standard health service (``grpc.health.v1.Health/Check``) over
plaintext HTTP/2, as the kubelet calls it.

One unary call on a fresh connection (h2 for the HTTP/2 framing; the two tiny protobuf
messages are encoded by hand): the probe succeeds when the service answers ``SERVING``.
"""

from __future__ import annotations

import asyncio
import contextlib

import h2.config
import h2.connection
import h2.events
import h2.exceptions

__all__ = ["HEALTH_STATUSES", "check"]

HEALTH_STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
"""``grpc.health.v1.HealthCheckResponse.ServingStatus``."""
_PATH = "/grpc.health.v1.Health/Check"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _request(service: str) -> bytes:
    """A length-prefixed ``HealthCheckRequest{service}``."""
    raw = service.encode()
    message = b"\x0a" + _varint(len(raw)) + raw if raw else b""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    """The varint at ``data[i:]`` and the index after it."""
    value = shift = 0
    while True:
        if i >= len(data):
            raise ValueError("malformed health check response")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def _status(message: bytes) -> int:
    """The ``status`` (field 1, varint) of a ``HealthCheckResponse``; 0 when absent."""
    i = 0
    status = 0
    while i < len(message):
        key, i = _read_varint(message, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(message, i)
            if field == 1:
                status = value
        elif wire == 2:
            length, i = _read_varint(message, i)
            i += length
        else:
            raise ValueError("malformed health check response")
    return status


async def check(host: str, port: int, service: str = "", *, timeout: float = 1.0,
                user_agent: str = "kube-probe/1.32") -> tuple[bool, str]:
    """Call Health/Check on ``host:port``: (serving, a message for the probe result)."""
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False, (f'timeout: failed to connect service "{target}" within '
                       f"{timeout:g}s: context deadline exceeded")
    try:
        async with asyncio.timeout(timeout):
            return await _call(reader, writer, target, service, user_agent)
    except TimeoutError:
        return False, (f'timeout: health rpc did not complete within {timeout:g}s')
    except (OSError, ValueError, h2.exceptions.ProtocolError) as exc:
        return False, f"error: health rpc probe failed: {exc}"
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: str,
                service: str, user_agent: str) -> tuple[bool, str]:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", _PATH),
                               (":authority", target), ("content-type", "application/grpc"),
                               ("te", "trailers"), ("user-agent", user_agent)])
    conn.send_data(stream, _request(service), end_stream=True)
    writer.write(conn.data_to_send())
    await writer.drain()
    body = bytearray()
    headers: dict[str, str] = {}
    while True:
        data = await reader.read(65536)
        if not data:
            break
        done = False
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                headers.update({str(k): str(v) for k, v in event.headers})
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset |
                            h2.events.ConnectionTerminated):
                done = True
        pending = conn.data_to_send()
        if pending:
            writer.write(pending)
            await writer.drain()
        if done:
            break
    code = headers.get("grpc-status")
    if code is None:
        return False, "error: health rpc probe failed: no grpc-status in the response"
    if code != "0":
        return False, (f"error: health rpc probe failed: rpc error: code = {code} desc = "
                       f"{headers.get('grpc-message', '')}")
    if len(body) < 5:
        return False, "error: health rpc probe failed: empty response"
    length = int.from_bytes(body[1:5], "big")
    status = _status(bytes(body[5:5 + length]))
    name = HEALTH_STATUSES.get(status, str(status))
    if status != 1:
        return False, f'service unhealthy (responded with "{name}")'
    return True, ""
