"""kubeling-dns: cluster DNS for Services and pods.

Built on dnspython (a maintained, complete DNS toolkit: wire parsing with EDNS and
truncation, rdata types, and an asyncio client used for forwarding), rather than dnslib,
whose smaller feature set would leave forwarding and TCP fallback to us.
"""

from kubeling_dns.resolver import ClusterIndex, ClusterResolver
from kubeling_dns.server import DnsServer

__all__ = ["ClusterIndex", "ClusterResolver", "DnsServer"]
