"""The iptables proxier passes the shared proxier contract (real iptables, real traffic,
inside test network namespaces)."""

from __future__ import annotations

from kubeling_proxy_iptables import IptablesProxier, IptablesSettings

from kubeling.proxy import Proxier
from kubeling.testing.proxier_contract import ProxierContract


class TestIptablesContract(ProxierContract):
    def make_proxier(self, netns: str) -> Proxier:
        return IptablesProxier(IptablesSettings(netns=netns))


class TestIptablesContractOneTransaction(ProxierContract):
    """The same with full syncs forced into one transaction and the legacy flavour."""

    def make_proxier(self, netns: str) -> Proxier:
        return IptablesProxier(IptablesSettings(netns=netns, mode="legacy", batch_lines=0))

    async def rules_present(self, proxier: Proxier, netns: str) -> bool:
        import subprocess

        out = subprocess.run(["ip", "netns", "exec", netns, "iptables-legacy-save"],
                             capture_output=True, text=True).stdout
        return "KUBE-" in out
