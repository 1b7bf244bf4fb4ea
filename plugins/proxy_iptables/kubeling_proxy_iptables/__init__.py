"""kubeling-proxy-iptables: the ``iptables`` proxier (kube-proxy's iptables mode)."""

from kubeling_proxy_iptables.proxier import IptablesProxier, IptablesSettings

__all__ = ["IptablesProxier", "IptablesSettings"]
