"""The gRPC probe client against a real gRPC health server (grpcio) on loopback."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from kubeling_kubelet.grpcprobe import check

grpc = pytest.importorskip("grpc")
health = pytest.importorskip("grpc_health.v1.health")
health_pb2 = pytest.importorskip("grpc_health.v1.health_pb2")
health_pb2_grpc = pytest.importorskip("grpc_health.v1.health_pb2_grpc")


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, object]]:
    srv = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, srv)
    port = srv.add_insecure_port("127.0.0.1:0")
    await srv.start()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("db", health_pb2.HealthCheckResponse.NOT_SERVING)
    yield port, servicer
    await srv.stop(None)


async def test_serving_and_not_serving(server: tuple[int, object]) -> None:
    port, servicer = server
    assert await check("127.0.0.1", port) == (True, "")
    assert await check("127.0.0.1", port, "db") == \
        (False, 'service unhealthy (responded with "NOT_SERVING")')
    await servicer.set("db", health_pb2.HealthCheckResponse.SERVING)  # type: ignore[attr-defined]
    assert await check("127.0.0.1", port, "db") == (True, "")
    ok, message = await check("127.0.0.1", port, "unknown-service")
    assert not ok and message.startswith("error: health rpc probe failed: rpc error: code = 5")


async def test_nothing_listening_is_a_failure() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ok, message = await check("127.0.0.1", port, timeout=0.5)
    assert not ok and message == (f'timeout: failed to connect service "127.0.0.1:{port}" '
                                  "within 0.5s: context deadline exceeded")


async def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        ok, message = await check("127.0.0.1", port, timeout=0.3)
    assert not ok and message == "timeout: health rpc did not complete within 0.3s"
