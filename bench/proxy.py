"""Service proxy sync times: the iptables proxier against bare iptables-restore.

For 1 000 and 10 000 Services x 5 endpoints, in fresh network namespaces made for the run
(``kl-bench-<random>``; the host's tables are never touched), for each iptables flavour:

* full sync: rule generation + iptables-restore, as the proxier does it;
* bare restore: the very same restore inputs fed to iptables-restore directly, in a fresh
  namespace, in the same run -> the ratio is our overhead;
* partial sync: one endpoint of one Service changes in the loaded set (median of several);
* floor: a bare iptables-restore of a one-rule input into the same loaded namespace.  With
  the nf_tables flavour every iptables(-restore) or nft call that writes a rule first dumps
  the netns' chains (quadratic in the kernel's chain dump: ~60k chains at 10k Services), so
  this floor, not the proxier, bounds partial syncs at scale.

With the nf_tables flavour a full sync of a large set is applied as several transactions
(one huge input does not finish in minutes with iptables-nft 1.8); the bare restore replays
the same inputs.  ``--single`` also times one-transaction bare restores where feasible.

Usage: ``python bench/proxy.py [--sizes 1000,10000] [--modes nft,legacy] [--single]``
(needs root).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import subprocess
import time

from kubeling_proxy_iptables import IptablesProxier, IptablesSettings

from kubeling.proxy import Endpoint, ProxyState, ServicePort, ServicePortName

ENDPOINTS = 5


def make_state(n: int, *, bump: int = -1) -> ProxyState:
    """``n`` Services x 5 endpoints; ``bump``: that Service's last endpoint is different."""
    services = {}
    endpoints = {}
    for i in range(n):
        name = ServicePortName(f"ns{i % 50}", f"svc{i}", "http", "TCP")
        ip = f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256 or 1}"
        services[name] = ServicePort(name=name, cluster_ips=(ip,), port=80, protocol="TCP",
                                     node_port=30000 + i if i < 2000 else 0)
        eps = [Endpoint(ip=f"10.{244 + j}.{(i // 250) % 256}.{i % 250 + 2}", port=8080)
               for j in range(ENDPOINTS)]
        if i == bump:
            eps[-1] = Endpoint(ip=f"10.250.{(i // 250) % 256}.{i % 250 + 2}", port=8080)
        endpoints[name] = tuple(eps)
    return ProxyState(services, endpoints)


class Netns:
    def __init__(self) -> None:
        self.name = f"kl-bench-{secrets.token_hex(3)}"

    def __enter__(self) -> str:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self.name

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def bare_restore(netns: str, binary: str, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        subprocess.run(["nsenter", f"--net=/run/netns/{netns}", binary, "-w", "5",
                        "--noflush"], input=text.encode(), check=True)
    return time.perf_counter() - started


def restore_floor(netns: str, binary: str, rounds: int) -> float:
    """Median time of the smallest restore that writes a rule (a new chain with one
    rule; then it is removed again) into the loaded namespace: what any partial sync pays
    to iptables and the kernel, whatever the proxier does."""
    times = []
    for _ in range(max(rounds, 1)):
        started = time.perf_counter()
        subprocess.run(["nsenter", f"--net=/run/netns/{netns}", binary, "-w", "5",
                        "--noflush"], input=b"*nat\n:KUBE-BENCH-FLOOR - [0:0]\n"
                       b"-A KUBE-BENCH-FLOOR -j RETURN\nCOMMIT\n", check=True)
        times.append(time.perf_counter() - started)
        subprocess.run(["nsenter", f"--net=/run/netns/{netns}", binary, "-w", "5",
                        "--noflush"], input=b"*nat\n:KUBE-BENCH-FLOOR - [0:0]\n"
                       b"-X KUBE-BENCH-FLOOR\nCOMMIT\n", check=True)
    return statistics.median(times)


async def run(size: int, mode: str, single: bool, partial_rounds: int) -> dict[str, float]:
    binary = f"iptables-{mode}-restore"
    out: dict[str, float] = {}
    state = make_state(size)
    with Netns() as netns:
        proxier = IptablesProxier(IptablesSettings(netns=netns, mode=mode))
        started = time.perf_counter()
        result = await proxier.sync(state)
        out["full"] = time.perf_counter() - started
        out["generate"] = result.generate_seconds
        out["apply"] = result.apply_seconds
        out["lines"] = result.lines
        out["transactions"] = len(proxier.last_texts)
        texts = list(proxier.last_texts)
        times = []
        for round_ in range(partial_rounds):
            changed = make_state(size, bump=(round_ * 7919) % size)
            key = f"ns{((round_ * 7919) % size) % 50}/svc{(round_ * 7919) % size}"
            started = time.perf_counter()
            await proxier.sync(changed, frozenset({key}))
            times.append(time.perf_counter() - started)
            await proxier.sync(state, frozenset({key}))  # back, for the next round
        out["partial"] = statistics.median(times)
        out["partial_max"] = max(times)
        out["floor"] = restore_floor(netns, binary, partial_rounds)
    with Netns() as netns:
        out["bare"] = bare_restore(netns, binary, texts)
    if single and (mode == "legacy" or size <= 2000):
        with Netns() as netns:
            out["bare_single"] = bare_restore(netns, binary, ["".join(texts)])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--modes", default="nft,legacy")
    parser.add_argument("--single", action="store_true",
                        help="also time one-transaction bare restores where feasible")
    parser.add_argument("--partial-rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{'mode':7} {'services':>8} {'lines':>8} {'tx':>3} {'generate':>9} {'apply':>8} "
          f"{'full':>8} {'bare':>8} {'ratio':>6} {'partial':>9} {'part max':>9} {'floor':>9}")
    for mode in args.modes.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            r = asyncio.run(run(size, mode, args.single, args.partial_rounds))
            print(f"{mode:7} {size:>8} {int(r['lines']):>8} {int(r['transactions']):>3} "
                  f"{r['generate']:>8.2f}s {r['apply']:>7.2f}s {r['full']:>7.2f}s "
                  f"{r['bare']:>7.2f}s {r['full'] / r['bare']:>6.2f} "
                  f"{r['partial'] * 1000:>7.1f}ms {r['partial_max'] * 1000:>7.1f}ms "
                  f"{r['floor'] * 1000:>7.1f}ms", flush=True)
            if "bare_single" in r:
                print(f"        one-transaction bare restore of the same text: "
                      f"{r['bare_single']:.2f}s", flush=True)
    print("full = generation + restore(s) as the proxier runs them; bare = the same restore "
          "inputs piped to iptables-restore in a fresh namespace; partial = one endpoint of "
          "one Service changed (median); floor = a bare one-rule iptables-restore into the "
          "same loaded namespace (median), the least any partial sync pays.")


if __name__ == "__main__":
    main()
