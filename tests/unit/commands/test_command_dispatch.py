from fleetlink.commands.dispatch import DispatchQueue, Pending
from fleetlink.contracts.models import Command, CommandName

VIN = "WVWZZZ1JZXW000001"
OTHER = "WVWZZZ1JZXW000002"
NOW = 1_764_000_000_000


def pending(command_id: str, name: CommandName = CommandName.TRUNK_OPEN, vin: str = VIN,
            partition: int = 0, ttl: int = 60_000) -> Pending:  # fmt: skip
    command = Command(command_id=command_id, name=name, issued_at=NOW, expires_at=NOW + ttl)
    return Pending(vin, command, partition, 0)


def ids(items: list[Pending]) -> list[str]:
    return [item.command.command_id for item in items]


def online_queue(*vins: str) -> DispatchQueue:
    queue = DispatchQueue()
    for vin in vins:
        queue.presence(vin, True)
    return queue


def test_online_vehicle_gets_the_command_at_once_offline_one_when_it_connects() -> None:
    queue = online_queue(VIN)
    assert ids(queue.command(pending("a"), NOW).publish) == ["a"]
    held = queue.command(pending("b", vin=OTHER), NOW)
    assert held.publish == []
    assert queue.held == 1
    assert ids(queue.presence(OTHER, True).publish) == ["b"]
    assert queue.held == 0


def test_unknown_presence_counts_as_offline() -> None:
    queue = DispatchQueue()
    assert queue.command(pending("a"), NOW).publish == []
    assert queue.held == 1


def test_cancel_withdraws_a_held_command_but_not_one_already_published() -> None:
    queue = online_queue(VIN)
    queue.command(pending("out"), NOW)
    queue.presence(VIN, False)
    queue.command(pending("held"), NOW)
    late = queue.cancel(VIN, "out", NOW + 1, "cancelled-by-client")
    assert late.withdrawn == []
    assert late.reports == []
    done = queue.cancel(VIN, "held", NOW + 1, "cancelled-by-client")
    assert ids(done.withdrawn) == ["held"]
    assert [(r.state, r.reason) for r in done.reports] == [("cancelled", "cancelled-by-client")]
    assert queue.presence(VIN, True).publish == []  # nothing left to send


def test_a_newer_setting_supersedes_a_held_older_one_actuations_do_not() -> None:
    queue = DispatchQueue()
    queue.command(pending("warm", CommandName.CLIMATE), NOW)
    queue.command(pending("trunk1"), NOW)
    newer = queue.command(pending("cool", CommandName.CLIMATE), NOW + 5)
    assert ids(newer.withdrawn) == ["warm"]
    assert [(r.command_id, r.state, r.reason) for r in newer.reports] == [
        ("warm", "cancelled", "superseded")
    ]
    queue.command(pending("trunk2"), NOW + 6)
    assert ids(queue.presence(VIN, True).publish) == ["trunk1", "cool", "trunk2"]  # in order


def test_expired_commands_are_withheld_and_reported() -> None:
    queue = DispatchQueue()
    queue.command(pending("short", ttl=1000), NOW)
    queue.command(pending("long", ttl=60_000), NOW)
    gone = queue.expire(NOW + 1000)
    assert ids(gone.withdrawn) == ["short"]
    assert [(r.state, r.reason) for r in gone.reports] == [("expired", "ttl")]
    stale = queue.command(pending("stale", ttl=-1), NOW)
    assert ids(stale.withdrawn) == ["stale"]
    assert stale.reports[0].state == "expired"
    assert ids(queue.presence(VIN, True).publish) == ["long"]


def test_the_same_command_id_twice_is_sent_once() -> None:
    queue = online_queue(VIN)
    assert ids(queue.command(pending("a"), NOW).publish) == ["a"]
    again = queue.command(pending("a"), NOW + 1)
    assert again.publish == []
    assert ids(again.withdrawn) == ["a"]


def test_nothing_of_a_partition_goes_out_before_it_was_read_to_its_end() -> None:
    queue = online_queue(VIN)
    queue.assigned({0, 1})
    assert queue.command(pending("p0", partition=0), NOW).publish == []
    queue.command(pending("p1", partition=1), NOW)
    # the cancel behind the command in partition 0 is read before anything is sent
    queue.cancel(VIN, "p0", NOW, "cancelled-by-client")
    assert queue.caught_up(0).publish == []
    assert ids(queue.caught_up(1).publish) == ["p1"]


def test_revoked_partitions_forget_their_held_commands_so_they_can_be_read_again() -> None:
    queue = DispatchQueue()
    queue.command(pending("a", partition=3), NOW)
    queue.revoked({3})
    assert queue.held == 0
    queue.presence(VIN, True)
    assert ids(queue.command(pending("a", partition=3), NOW).publish) == ["a"]


def test_without_presence_every_car_counts_as_online() -> None:
    queue = DispatchQueue(assume_online=True)
    assert ids(queue.command(pending("a"), NOW).publish) == ["a"]
