"""The edge-cloud parts of a local stack: the link between the two clusters (a proxy that can
be cut) and the two MirrorMaker 2 processes that cross it, one beside each target."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fleetlink.adapters import runner
from fleetlink.adapters.polling import wait_until
from fleetlink.adapters.runner import ProcessRecord
from fleetlink.contracts.topics import Site
from fleetlink.errors import StackError
from fleetlink.settings import KafkaSettings
from fleetlink.stack import link, mirror, mirror_run
from fleetlink.stack.link import LinkMode
from fleetlink.stack.ports import LOOPBACK

if TYPE_CHECKING:
    from fleetlink.stack.local import LocalStack

LINK = "link"  # the process standing for the WAN between edge and cloud


class EdgeCloudLink:
    """The link and the mirrors of ``stack``: start them, cut and heal the link, measure lag."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    @property
    def mode_file(self) -> Path:
        return self.stack.state_dir / "link" / "mode"

    def mode(self) -> LinkMode:
        return link.read_mode(self.mode_file)

    def cut(self, mode: LinkMode = LinkMode.RESET) -> None:
        """Cut the link (``reset`` or ``blackhole``); both clusters and both MM2 processes keep
        running. ``heal`` undoes it."""
        self._require_link()
        link.write_mode(self.mode_file, mode)

    def heal(self) -> None:
        self._require_link()
        link.write_mode(self.mode_file, LinkMode.UP)

    def lag_s(self, source: Site) -> float | None:
        """How far the other cluster trails ``source`` (the newest copied beat's age); None
        before a first beat crossed."""
        return mirror_run.heartbeat_age_s(self.stack.bootstrap_servers(source.other), source)

    # start ------------------------------------------------------------------------------------

    def start_link(self) -> ProcessRecord:
        routes = [route for cluster in self.stack.clusters for route in cluster.link_routes()]
        link.write_mode(self.mode_file, LinkMode.UP)
        return runner.spawn(
            LINK,
            link.link_argv(sys.executable, self.mode_file, routes, LOOPBACK),
            log=self.stack.logs_dir / f"{LINK}.log",
            marker=self.mode_file,
            port=routes[0][0],
            die_with_parent=self.stack.die_with_caller,
        )

    def start_mirror(self, java: Path, libs: Path, target: Site) -> ProcessRecord:
        """The MM2 process writing into ``target``, in dedicated mode beside it: its own
        cluster directly, the remote one over the link."""
        stack = self.stack
        properties = mirror.mm2_properties(
            {site: KafkaSettings() for site in Site},
            {
                cluster.site: cluster.bootstrap_servers()
                if cluster.site is target
                else cluster.link_bootstrap_servers()
                for cluster in stack.clusters
            },
            stack.topics,
            stack.settings.mirror,
            replication_factor=min(3, stack.settings.brokers),
        )
        return mirror_run.start_mirror(
            java,
            libs,
            target,
            properties=properties,
            directory=stack.state_dir / "mirror",
            logs_dir=stack.logs_dir,
            heap_mb=stack.settings.mirror_heap_mb,
            port=stack.cluster(target).kafka_ports[0],
            die_with_parent=stack.die_with_caller,
        )

    def wait_until_mirrored(self, alive: list[ProcessRecord]) -> None:
        """Until a heartbeat crossed each way (MM2 runs both flows end to end)."""
        timeout = self.stack.settings.start_timeout_s

        def crossed() -> bool:
            for record in alive:
                if not runner.is_running(record):
                    raise StackError(f"{record.name} exited during start-up; see {record.log}")
            return all(self.lag_s(site) is not None for site in Site)

        if not wait_until(crossed, timeout, interval=0.5):
            raise StackError(
                f"MirrorMaker 2 copied no heartbeat within {timeout:.0f} s; see "
                f"{self.stack.logs_dir / 'mirror-edge.log'} and mirror-cloud.log"
            )

    def _require_link(self) -> None:
        state = self.stack.state()
        if state is None or not any(p.name == LINK for p in state.processes):
            raise StackError("no link to cut: start the stack with --topology edge-cloud")
