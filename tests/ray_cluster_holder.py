"""Start a two-node Ray cluster on loopback (a head and a second node, each its own raylet
and object store), print its address, and keep it up until stdin closes.

Nodes are pinned to 127.0.0.1: `ray start` would advertise the machine's network address.
Drivers joining it need RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 so that they, too, see
themselves at 127.0.0.1 (that variable only switches Ray's node-IP detection to loopback)."""

import sys

from ray.cluster_utils import Cluster

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "node_ip_address": "127.0.0.1",
                                                        "include_dashboard": False})
cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()
cluster.shutdown()
