"""Hollow nodes: simulated nodes for scheduling tests, benchmarks and policy experiments.

``HollowNodes(client, count=1000).start()`` registers Nodes that heartbeat (Leases in
``kube-node-lease``, Ready conditions) and turn pods bound to them Running at once,
without containers; deleting such a pod finishes at once, as a kubelet would after the
containers stopped.  ``kubeling simulate nodes N`` does the same from the command line,
and the ``hollow_nodes`` config section (``count: N``) runs them inside ``kubeling up``.
"""

from kubeling_hollow_nodes.hollow import HollowNodes, HollowNodeSettings

__all__ = ["HollowNodeSettings", "HollowNodes"]
