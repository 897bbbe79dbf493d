"""The local stack: one or three KRaft Kafka nodes and one Mosquitto, all state in one directory;
with the ``edge-cloud`` topology a second (cloud) cluster and two MirrorMaker 2 processes.

Layout of the state directory::

    stack.json                 processes started by ``up`` (``down`` stops exactly these)
    kafka/cluster.id           kept across restarts, so data survives ``down`` / ``up``
    kafka/node-N/              server.properties and data/ of node N
    cloud-kafka/               the same for the cloud cluster (edge-cloud)
    mirror/mm2-<target>.properties  each MM2 process's configuration (edge-cloud)
    link/mode                  the link proxy's mode: up, reset or blackhole (edge-cloud)
    mosquitto/                 mosquitto.conf, the generated ACL and the persistence database
    pki/                       the development CA and identities (see fleetlink.security.pki)
    logs/                      one log per process
"""

from __future__ import annotations

import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from fleetlink.adapters import runner
from fleetlink.adapters.polling import wait_until
from fleetlink.adapters.runner import ProcessRecord
from fleetlink.contracts.topics import PRODUCTION_TOPICS, Site, TopicMap
from fleetlink.errors import StackError
from fleetlink.security.pki import DevPki, Role
from fleetlink.settings import StackSettings
from fleetlink.settings.stack import Topology
from fleetlink.stack import kafka, mirror_run, mosquitto
from fleetlink.stack.access import BrokerAccess
from fleetlink.stack.clusters import LocalCluster, local_clusters
from fleetlink.stack.edge_cloud import LINK, EdgeCloudLink
from fleetlink.stack.ports import LOOPBACK, port_accepts, port_is_free
from fleetlink.stack.prereq import find_java, find_mosquitto
from fleetlink.stack.probes import kafka_broker_ids, mqtt_answers
from fleetlink.stack.state import StackState, clear_state, load_state, save_state

ProgressCallback = Callable[[str], None]

MOSQUITTO = "mosquitto"
# The identity of the stack's own probes: reads, never publishes.
PROBE_IDENTITY = "fleetlink-probe"


class LocalStack:
    """Start, inspect and stop the local Kafka + Mosquitto processes of one state directory."""

    def __init__(
        self,
        settings: StackSettings,
        *,
        die_with_caller: bool = False,
        topics: TopicMap = PRODUCTION_TOPICS,
    ) -> None:
        """``die_with_caller``: the processes this object starts stop when the calling process
        dies, even by ``kill -9`` (the demo's own stack); else they outlive it. ``topics``: the
        names MirrorMaker 2 mirrors (under any run prefix)."""
        self.settings = settings
        self.die_with_caller = die_with_caller
        self.topics = topics
        self.state_dir = settings.state_dir.resolve()
        self.cache_dir = settings.cache_dir.expanduser().resolve()
        self.link = EdgeCloudLink(self)  # edge-cloud: the link and the mirrors

    # paths ------------------------------------------------------------------------------------

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def _mosquitto_dir(self) -> Path:
        return self.state_dir / "mosquitto"

    @property
    def pki(self) -> DevPki:
        return DevPki(self.settings.pki_dir)

    @property
    def access(self) -> BrokerAccess:
        """Who may connect to this stack's broker: identities, revocations, the ACL."""
        return BrokerAccess(self)

    @property
    def acl_file(self) -> Path:
        return self._mosquitto_dir / "acl"

    # queries ----------------------------------------------------------------------------------

    def state(self) -> StackState | None:
        return load_state(self.state_dir)

    def bootstrap_servers(self, site: Site = Site.EDGE) -> str:
        """The cluster at ``site`` (the one cluster of a single stack)."""
        return self.cluster(site).bootstrap_servers()

    @property
    def clusters(self) -> list[LocalCluster]:
        """The Kafka clusters of the running stack's topology, else of the settings'."""
        state = self.state()
        topology = self.settings.topology if state is None else Topology(state.topology)
        return local_clusters(self.settings, self.state_dir, topology)

    def cluster(self, site: Site) -> LocalCluster:
        for cluster in self.clusters:
            if cluster.site is site:
                return cluster
        raise StackError(f"this stack has no {site.value} cluster (stack.topology single)")

    def cluster_of(self, process_name: str) -> LocalCluster | None:
        return next((c for c in self.clusters if c.owns(process_name)), None)

    def is_up(self) -> bool:
        state = self.state()
        return state is not None and all(runner.is_running(p) for p in state.processes)

    def log_files(self) -> dict[str, Path]:
        state = self.state()
        if state is not None:
            return {record.name: Path(record.log) for record in state.processes}
        return {path.stem: path for path in sorted(self.logs_dir.glob("*.log"))}

    # lifecycle --------------------------------------------------------------------------------

    def up(self, on_progress: ProgressCallback | None = None) -> StackState:
        """Start whatever is not running yet and wait until every component answers."""
        report = on_progress or (lambda _message: None)
        existing = self.state()
        if existing is not None:
            if all(runner.is_running(p) for p in existing.processes):
                if existing.brokers != self.settings.brokers:
                    raise StackError(
                        f"the stack in {self.state_dir} runs {existing.brokers} broker(s); "
                        "run `fleetlink stack down` before changing stack.brokers"
                    )
                if existing.topology != self.settings.topology:
                    raise StackError(
                        f"the stack in {self.state_dir} runs the {existing.topology} topology; "
                        "run `fleetlink stack down` before changing stack.topology"
                    )
                return existing
            self.down()

        java = find_java()
        mosquitto_bin = find_mosquitto()
        self._check_ports_free()
        if self.pki.init():
            report(f"Created a development CA in {self.pki.directory}")
        self.pki.ensure([PROBE_IDENTITY], Role.MONITOR)
        libs = kafka.ensure_kafka_jars(self.cache_dir, self.settings.kafka_version, report)
        cluster_ids = {
            cluster.site: cluster.cluster_id(self.settings.brokers) for cluster in self.clusters
        }

        state = StackState(
            cluster_id=cluster_ids[Site.EDGE],
            brokers=self.settings.brokers,
            topology=self.settings.topology,
        )
        try:
            report("Starting Mosquitto")
            state.processes.append(self._start_mosquitto(mosquitto_bin))
            save_state(self.state_dir, state)
            for cluster in self.clusters:
                report(
                    f"Starting Kafka {self.settings.kafka_version} "
                    f"({self.settings.brokers} node(s), {cluster.site.value})"
                )
                for node_id in range(1, self.settings.brokers + 1):
                    state.processes.append(self._start_kafka_node(java, libs, cluster, node_id))
                    save_state(self.state_dir, state)
            report("Waiting for Kafka and Mosquitto to answer")
            self._wait_until_ready(state)
            if self.settings.topology is Topology.EDGE_CLOUD:
                report("Starting the link and MirrorMaker 2 both ways")
                state.processes.append(self.link.start_link())
                save_state(self.state_dir, state)
                for cluster in self.clusters:
                    mirror_run.prepare_heartbeats(cluster.bootstrap_servers())
                for site in Site:
                    state.processes.append(self.link.start_mirror(java, libs, site))
                    save_state(self.state_dir, state)
                report("Waiting for the first heartbeats to cross both ways")
                self.link.wait_until_mirrored(state.processes)
        except BaseException:
            self.down()
            raise
        return state

    def down(self, *, purge: bool = False) -> list[ProcessRecord]:
        """Stop the processes ``up`` started (by pid), Kafka first; ``purge`` also deletes data."""
        state = self.state()
        stopped: list[ProcessRecord] = []
        if state is not None:
            first = state.mirrors() + state.kafka()
            records = first + [p for p in state.processes if p not in first]
            stopped = [record for record in records if runner.is_running(record)]
            for record in state.mirrors():
                runner.stop(record, timeout=30.0)
            # Brokers get SIGTERM together so the controller quorum stays up while they hand over.
            for record in state.kafka():
                runner.send_signal(record, signal.SIGTERM)
            for record in records:
                runner.stop(record, timeout=30.0)
            clear_state(self.state_dir)
        if purge:
            for sub in ("kafka", "cloud-kafka", "mirror", "link", "mosquitto", "logs"):
                shutil.rmtree(self.state_dir / sub, ignore_errors=True)
        return stopped

    def stop_component(self, name: str) -> None:
        """Stop one component cleanly (fault tests: "stop Kafka"); ``start_component`` undoes it."""
        runner.stop(self._record(name), timeout=60.0)

    def start_component(self, name: str) -> ProcessRecord:
        """Start one stopped component again with its recorded settings; wait until it answers."""
        state = self.state()
        old = self._record(name)
        if runner.is_running(old):
            return old
        assert state is not None
        cluster = self.cluster_of(name)
        if name == MOSQUITTO:
            record = self._start_mosquitto(find_mosquitto())
        elif name == LINK:
            record = self.link.start_link()
        else:
            libs = kafka.ensure_kafka_jars(self.cache_dir, self.settings.kafka_version)
            if cluster is not None:
                record = self._start_kafka_node(find_java(), libs, cluster, cluster.node_id(name))
            else:
                target = Site(name.removeprefix("mirror-"))
                record = self.link.start_mirror(find_java(), libs, target)
        state.processes = [record if p.name == name else p for p in state.processes]
        save_state(self.state_dir, state)
        self._wait_until_ready(state)
        return record

    def _record(self, name: str) -> ProcessRecord:
        state = self.state()
        records = [] if state is None else [p for p in state.processes if p.name == name]
        if not records:
            raise StackError(f"no component named {name!r}")
        return records[0]

    def kill(self, name: str, signum: signal.Signals = signal.SIGKILL) -> ProcessRecord:
        """Send ``signum`` to one component (fault tests): ``kafka-2``, ``mosquitto``,
        ``mirror-cloud``."""
        record = self._record(name)
        runner.send_signal(record, signum)
        return record

    def wipe_broker_state(self) -> None:
        """Delete Mosquitto's persistence database (fault tests: a broker that comes back with
        no sessions, queues or retained messages). Only while it is stopped."""
        record = self._record(MOSQUITTO)
        if runner.is_running(record):
            raise StackError("stop Mosquitto before wiping its state")
        (self._mosquitto_dir / "data" / "mosquitto.db").unlink(missing_ok=True)

    # internals --------------------------------------------------------------------------------

    def _check_ports_free(self) -> None:
        wanted = {
            "stack.mqtt_port": [self.settings.mqtt_port],
            "stack.mqtt_password_port": [p for p in [self.settings.mqtt_password_port] if p],
        }
        for cluster in self.clusters:
            key = "stack.cloud_" if cluster.site is Site.CLOUD else "stack."
            wanted[f"{key}kafka_port"] = cluster.kafka_ports
            wanted[f"{key}controller_port"] = cluster.controller_ports
        for key, ports in wanted.items():
            for port in ports:
                if not port_is_free(port):
                    raise StackError(
                        f"port {port} on {LOOPBACK} is taken by another process: stop it or "
                        f"choose another {key} (FLEETLINK_{key.upper().replace('.', '__')})"
                    )

    def _start_mosquitto(self, mosquitto_bin: Path) -> ProcessRecord:
        data_dir = self._mosquitto_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = self._mosquitto_dir / "mosquitto.conf"
        log = self.logs_dir / "mosquitto.log"
        self.access.refresh_access()
        pki = self.pki
        config.write_text(
            mosquitto.mosquitto_config(
                port=self.settings.mqtt_port,
                password_port=self.settings.mqtt_password_port,
                data_dir=data_dir,
                log_file=log,
                tls=mosquitto.BrokerTls(
                    ca_file=pki.ca_file,
                    cert_file=pki.broker_cert_file,
                    key_file=pki.broker_key_file,
                    crl_file=pki.crl_file,
                    acl_file=self.acl_file,
                    password_file=pki.passwords_file,
                ),
                max_queued_messages=self.settings.mqtt_max_queued_messages,
                max_packet_bytes=self.settings.mqtt_max_packet_bytes,
            )
        )
        return runner.spawn(
            MOSQUITTO,
            mosquitto.mosquitto_argv(mosquitto_bin, config),
            log=log,
            marker=config,
            port=self.settings.mqtt_port,
            die_with_parent=self.die_with_caller,
        )

    def _start_kafka_node(
        self, java: Path, libs: Path, cluster: LocalCluster, node_id: int
    ) -> ProcessRecord:
        return cluster.start_node(
            java,
            libs,
            node_id,
            logs_dir=self.logs_dir,
            heap_mb=self.settings.kafka_heap_mb,
            die_with_parent=self.die_with_caller,
        )

    def mqtt_answers(self) -> bool:
        """True when Mosquitto accepts the stack's probe identity."""
        return mqtt_answers(LOOPBACK, self.settings.mqtt_port, self.pki.client_tls(PROBE_IDENTITY))

    def _wait_until_ready(self, state: StackState) -> None:
        expected = set(range(1, state.brokers + 1))
        timeout = self.settings.start_timeout_s

        def ready() -> bool:
            self._check_alive(state)
            for cluster in self.clusters:
                if not all(port_accepts(p) for p in cluster.kafka_ports):
                    return False
                if kafka_broker_ids(cluster.bootstrap_servers(), timeout=2.0) < expected:
                    return False
            return self.mqtt_answers()

        if not wait_until(ready, timeout, interval=0.5):
            raise StackError(
                f"the stack did not answer within {timeout:.0f} s; see the logs in {self.logs_dir}"
            )

    @staticmethod
    def _check_alive(state: StackState) -> None:
        for record in state.processes:
            if not runner.is_running(record):
                last = runner.tail(Path(record.log), 5)
                raise StackError(
                    f"{record.name} exited during start-up; last log line: "
                    f"{last[-1] if last else '(none)'} (log: {record.log})"
                )
