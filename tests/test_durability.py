"""Nothing acknowledged is lost: every 2xx create survives ``kill -9`` of ``kubeling up``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp

from kubeling.testing.cluster import KubelingProcess


async def _create_until_killed(proc: KubelingProcess, acknowledged: list[str]) -> int:
    path = f"{proc.url}/api/v1/namespaces/default/configmaps"
    failures = 0
    async with aiohttp.ClientSession() as session:

        async def writer(worker: int) -> None:
            nonlocal failures
            i = 0
            while True:
                name = f"w{worker}-{i}"
                i += 1
                body = json.dumps({"metadata": {"name": name}, "data": {"n": str(i)}})
                try:
                    async with session.post(path, data=body, headers={
                            "Content-Type": "application/json"}) as resp:
                        await resp.read()
                        if resp.status == 201:
                            acknowledged.append(name)
                except aiohttp.ClientError:
                    failures += 1
                    return

        async def killer() -> None:
            while len(acknowledged) < 400:
                await asyncio.sleep(0.01)
            proc.kill9()

        await asyncio.gather(killer(), *(writer(w) for w in range(16)))
    return failures


def test_acknowledged_creates_survive_kill_9(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    proc = KubelingProcess(data_dir).start()
    acknowledged: list[str] = []
    failures = asyncio.run(_create_until_killed(proc, acknowledged))
    assert failures > 0  # the process really died mid-stream
    assert len(acknowledged) >= 400
    again = KubelingProcess(data_dir).start()
    try:
        listing = json.loads(again.kubectl("get", "configmaps", "-o", "json",
                                           check=True).stdout)
        present = {item["metadata"]["name"] for item in listing["items"]}
        lost = [name for name in acknowledged if name not in present]
        assert lost == []
        # what survived is whole: every object decodes and carries its data
        assert all(item["data"]["n"] for item in listing["items"])
    finally:
        again.stop()
