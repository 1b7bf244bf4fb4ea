"""kubeling's node agent (the kubelet): runs the pods bound to this node."""
