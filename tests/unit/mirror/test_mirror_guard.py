"""The judges of a replication flow: records expired before they crossed, a lag alarm."""

from fleetlink.mirror.guard import Expired, LagAlarm, RetentionGuard, SourcePartition

P0 = SourcePartition("fleet.telemetry", 0)
P1 = SourcePartition("fleet.telemetry", 1)


def test_records_deleted_at_the_source_before_mm2_copied_them_are_reported_once() -> None:
    guard = RetentionGuard()
    guard.copied(P0, 99)  # MM2 needs 100 next
    assert guard.check({P0: 0}) == []
    # the link is cut: the source cannot be read, MM2 stands still, retention goes on
    assert guard.check({}) == []
    assert guard.check({P0: 150}) == [Expired("fleet.telemetry", 0, 100, 149)]
    assert guard.check({P0: 150}) == []  # reported once
    guard.copied(P0, 170)  # MM2 went on from 150
    assert guard.check({P0: 150}) == []
    assert guard.check({P0: 160}) == []  # retention behind MM2 again


def test_normal_retention_behind_mm2_is_no_loss_and_unknown_partitions_are_skipped() -> None:
    guard = RetentionGuard()
    guard.copied(P0, 499)
    assert guard.check({P0: 0, P1: 40}) == []  # P1: MM2 stored nothing yet, no baseline
    guard.copied(P0, 999)
    assert guard.check({P0: 0}) == []
    assert guard.check({P0: 800}) == []  # retention took records MM2 had copied
    assert guard.pending({P0: 1200, P1: 50}) == 200


def test_after_a_loss_the_partition_is_judged_again_once_mm2_stored_a_position_past_it() -> None:
    guard = RetentionGuard()
    guard.copied(P0, 9)
    guard.check({P0: 0})
    assert guard.check({P0: 30})[0].count == 20  # 10..29
    # MM2 goes on from 30 but has stored nothing yet: what goes now may have been copied
    assert guard.check({P0: 45}) == []
    guard.copied(P0, 60)
    assert guard.check({P0: 50}) == []  # judged again from 61
    assert guard.check({P0: 70}) == [Expired("fleet.telemetry", 0, 61, 69)]


def test_the_lag_alarm_raises_once_and_clears_once() -> None:
    alarm = LagAlarm(bound_s=10)
    assert alarm.observe(None, 100) is None
    assert alarm.observe(3, 100) is None
    assert alarm.observe(12, 110) == "raised"
    assert alarm.raised_since == 98
    assert alarm.observe(40, 140) is None
    assert alarm.observe(None, 141) is None  # unknown: no change
    assert alarm.observe(2, 150) == "cleared"
    assert alarm.raised_since is None
