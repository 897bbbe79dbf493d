"""The Kafka clusters of a local stack: one, or an edge and a cloud one (``edge-cloud``)."""

from __future__ import annotations

from pathlib import Path

import msgspec

from fleetlink.adapters import runner
from fleetlink.adapters.runner import ProcessRecord
from fleetlink.contracts.topics import Site
from fleetlink.errors import StackError
from fleetlink.settings import StackSettings
from fleetlink.settings.stack import Topology
from fleetlink.stack import kafka
from fleetlink.stack.ports import LOOPBACK


class LocalCluster(msgspec.Struct, frozen=True):
    """One KRaft cluster of the stack: where its nodes keep their data and listen."""

    site: Site
    node_prefix: str  # its nodes are <node_prefix>-1, -2, ...
    root: Path
    kafka_ports: list[int]
    controller_ports: list[int]
    link_listener_ports: list[int] = []  # edge-cloud: each node's LINK listener
    link_ports: list[int] = []  # and the link proxy's port in front of it

    def node_name(self, node_id: int) -> str:
        return f"{self.node_prefix}-{node_id}"

    def owns(self, process_name: str) -> bool:
        prefix, _, number = process_name.rpartition("-")
        return prefix == self.node_prefix and number.isdigit()

    def node_id(self, process_name: str) -> int:
        return int(process_name.rpartition("-")[2])

    def node_dir(self, node_id: int) -> Path:
        return self.root / f"node-{node_id}"

    def bootstrap_servers(self) -> str:
        return ",".join(f"{LOOPBACK}:{port}" for port in self.kafka_ports)

    def link_bootstrap_servers(self) -> str:
        """The cluster as the other side reaches it: through the link proxy."""
        return ",".join(f"{LOOPBACK}:{port}" for port in self.link_ports)

    def link_routes(self) -> list[tuple[int, int]]:
        return list(zip(self.link_ports, self.link_listener_ports, strict=True))

    def cluster_id(self, brokers: int) -> str:
        """Reuse the cluster id of existing data; data of another node count is an error."""
        id_file = self.root / "cluster.id"
        nodes = sorted(self.root.glob("node-*"))
        if id_file.is_file() and nodes:
            if len(nodes) != brokers:
                raise StackError(
                    f"{self.root} holds data of a {len(nodes)}-node Kafka; "
                    "run `fleetlink stack down --purge` to start one of "
                    f"{brokers} node(s)"
                )
            return id_file.read_text().strip()
        id_file.parent.mkdir(parents=True, exist_ok=True)
        cluster_id = kafka.new_cluster_id()
        id_file.write_text(cluster_id + "\n")
        return cluster_id

    def start_node(
        self,
        java: Path,
        libs: Path,
        node_id: int,
        *,
        logs_dir: Path,
        heap_mb: int,
        die_with_parent: bool,
    ) -> ProcessRecord:
        """Format (once) and start node ``node_id`` of the cluster ``cluster_id`` chose; its
        log is ``<logs_dir>/<name>.log``."""
        node_dir = self.node_dir(node_id)
        data_dir = node_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        properties = node_dir / "server.properties"
        properties.write_text(
            kafka.server_properties(
                node_id=node_id,
                kafka_ports=self.kafka_ports,
                controller_ports=self.controller_ports,
                data_dir=data_dir,
                link=(
                    (self.link_listener_ports[node_id - 1], self.link_ports[node_id - 1])
                    if self.link_ports
                    else None
                ),
            )
        )
        # the id ``cluster_id`` chose at ``up``, before any node of this start had a directory
        cluster_id = (self.root / "cluster.id").read_text().strip()
        kafka.format_storage(java, libs, properties, cluster_id)
        name = self.node_name(node_id)
        log4j = kafka.write_log4j(self.root)
        return runner.spawn(
            name,
            kafka.broker_argv(java, libs, properties, log4j, heap_mb),
            log=logs_dir / f"{name}.log",
            marker=properties,
            port=self.kafka_ports[node_id - 1],
            die_with_parent=die_with_parent,
        )


def local_clusters(
    settings: StackSettings, state_dir: Path, topology: Topology
) -> list[LocalCluster]:
    """The edge cluster (``kafka-N`` in ``kafka/``: the one cluster of a single stack), then
    the cloud's (``cloud-kafka-N`` in ``cloud-kafka/``) with the edge-cloud topology."""
    layout = [(Site.EDGE, "kafka", settings.kafka_ports(), settings.controller_ports())]
    if topology is Topology.EDGE_CLOUD:
        cloud_ports = settings.cloud_kafka_ports(), settings.cloud_controller_ports()
        layout.append((Site.CLOUD, "cloud-kafka", *cloud_ports))
    linked = topology is Topology.EDGE_CLOUD
    return [
        LocalCluster(
            site=site,
            node_prefix=prefix,
            root=state_dir / prefix,
            kafka_ports=kafka_ports,
            controller_ports=controller_ports,
            # link blocks: 0, 1 the edge's listeners and proxy ports; 2, 3 the cloud's
            link_listener_ports=settings.link_ports(2 * index) if linked else [],
            link_ports=settings.link_ports(2 * index + 1) if linked else [],
        )
        for index, (site, prefix, kafka_ports, controller_ports) in enumerate(layout)
    ]
