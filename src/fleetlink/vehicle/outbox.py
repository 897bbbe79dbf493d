"""What the car has to send, kept until it is safe: sent in order, resent in order, bounded.

Without confirmation a message is done when the broker acknowledges it (PUBACK). With it, the
PUBACK only moves the message to *awaiting*: it is done when the platform confirms it is durably
in Kafka (``vehicles/{vin}/delivered``). What is awaiting when the link dies, or for longer
than the confirmation timeout, goes back to the front of the queue, in ``seq`` order. Pure: the
caller passes the clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import msgspec


class Pending(msgspec.Struct):
    topic: str
    payload: bytes
    retain: bool = False
    seq: int = 0
    sends: int = 0  # how many times it went out (0: never)
    sent_at: float = 0.0  # clock of the last PUBACK


class Outbox:
    """A bounded queue; when full the oldest message goes first and is counted, never silently."""

    def __init__(
        self,
        capacity: int = 50_000,
        *,
        confirmed: bool = False,
        resend_after_s: float = 15.0,
        max_resend_after_s: float = 300.0,
    ) -> None:
        self.confirmed = confirmed
        self._capacity = capacity
        self._base_resend_after_s = self._resend_after_s = resend_after_s
        self._max_resend_after_s = max(resend_after_s, max_resend_after_s)
        self._entries: dict[int, Pending] = {}  # seq -> message, in or out of the queue
        self._queue: deque[int] = deque()  # seqs to send, in order (may hold stale ones)
        self._awaiting: dict[int, None] = {}  # seqs acknowledged by the broker, not confirmed
        self._next_key = 0
        self.dropped = 0  # left because the outbox was full
        self.resends = 0  # sent again: after a reconnect or an overdue confirmation
        self.confirmed_count = 0
        self.lags: deque[float] = deque(maxlen=4096)  # recent PUBACK-to-confirmation, seconds

    def put(self, message: Pending) -> None:
        if len(self._entries) >= self._capacity:
            self._drop_oldest()
        if not message.seq:
            self._next_key -= 1  # unstamped messages are keyed below every seq
            message.seq = self._next_key
        self._entries[message.seq] = message
        self._queue.append(message.seq)

    def _drop_oldest(self) -> None:
        oldest = next(iter(self._awaiting), None)
        if oldest is None:
            while self._queue and self._queue[0] not in self._entries:
                self._queue.popleft()
            oldest = self._queue.popleft()
        self._forget(oldest)
        self.dropped += 1

    def peek(self) -> Pending | None:
        """The next message to send, or None."""
        queue, entries = self._queue, self._entries
        while queue:
            found = entries.get(queue[0])
            if found is not None and queue[0] not in self._awaiting:
                return found
            queue.popleft()  # confirmed or dropped while it waited for a resend
        return None

    def acknowledged(self, message: Pending, now: float) -> None:
        """The broker acknowledged ``message`` (the head): done, or awaiting confirmation."""
        if self._queue and self._queue[0] == message.seq:
            self._queue.popleft()
        message.sends += 1
        if self._entries.get(message.seq) is not message:
            return  # confirmed while this resend was on its way
        if not self.confirmed or message.seq < 0:
            del self._entries[message.seq]
            return
        message.sent_at = now
        self._awaiting[message.seq] = None

    def confirm(self, ranges: Iterable[tuple[int, int]], now: float) -> int:
        """Drop the sent messages in ``ranges`` (awaiting, or queued to go again after a lost
        link: the confirmation was only late); returns how many were confirmed."""
        entries, count = self._entries, 0
        for first, last in ranges:
            if last - first < len(entries):
                seqs: Iterable[int] = range(first, last + 1)
            else:  # a range is untrusted input: never walk more than what is held
                seqs = [seq for seq in entries if first <= seq <= last]
            for seq in seqs:
                message = entries.get(seq)
                if message is None or not message.sends:
                    continue  # never sent: a confirmation for an earlier life of this seq
                del entries[seq]
                self._awaiting.pop(seq, None)
                self.lags.append(now - message.sent_at)
                count += 1
        self.confirmed_count += count
        if count:
            self.restart_resend_clock()  # the platform answers again
        return count

    def resend_overdue(self, now: float) -> int:
        """Queue again what waits longer than the resend timeout for its confirmation: the
        broker acknowledged a message the platform never got (no subscriber at that moment, a
        crash before it was written). Each time that happens the timeout doubles until a
        confirmation comes, so a platform outage costs few resends."""
        oldest = self.oldest_awaiting()
        if oldest is None or now - oldest < self._resend_after_s:
            return 0
        count = self.resend_awaiting(older_than=now - self._resend_after_s)
        self._resend_after_s = min(self._resend_after_s * 2, self._max_resend_after_s)
        return count

    def overdue_in(self, now: float) -> float | None:
        """Seconds until ``resend_overdue`` has work, or None while nothing awaits."""
        oldest = self.oldest_awaiting()
        return None if oldest is None else oldest + self._resend_after_s - now

    def idle_wait_s(self, now: float, deadline: float | None, longest_s: float = 30.0) -> float:
        """How long a sender with nothing to send may sleep: until something is overdue or
        ``deadline``; ``longest_s`` is a backstop (every new message wakes it anyway)."""
        wait = longest_s
        overdue_in = self.overdue_in(now)
        if overdue_in is not None:
            wait = min(wait, max(0.01, overdue_in))
        if deadline is not None:
            wait = min(wait, max(0.01, deadline - now))
        return wait

    def restart_resend_clock(self) -> None:
        """Back to the first timeout (a new link, a confirmation, the last chance at stop)."""
        self._resend_after_s = self._base_resend_after_s

    def resend_awaiting(self, older_than: float | None = None) -> int:
        """Queue again, ahead of the rest and in ``seq`` order, what awaits confirmation (all
        of it after a reconnect, or what was acknowledged at ``older_than`` or before)."""
        overdue: list[int] = []
        for seq in self._awaiting:  # in acknowledgement order, oldest first
            if older_than is not None and self._entries[seq].sent_at > older_than:
                break
            overdue.append(seq)
        if not overdue:
            return 0
        for seq in overdue:
            del self._awaiting[seq]
        self._queue.extendleft(sorted(overdue, reverse=True))
        self.resends += len(overdue)
        return len(overdue)

    def oldest_awaiting(self) -> float | None:
        """When the longest-waiting unconfirmed message was acknowledged by the broker."""
        # insertion order is acknowledgement order: a resent message re-enters at the end
        first = next(iter(self._awaiting), None)
        return None if first is None else self._entries[first].sent_at

    @property
    def unconfirmed(self) -> int:
        """Messages acknowledged by the broker and not yet confirmed."""
        return len(self._awaiting)

    def _forget(self, seq: int) -> None:
        self._entries.pop(seq, None)
        self._awaiting.pop(seq, None)

    def __len__(self) -> int:
        """Everything still held: to send, and awaiting confirmation."""
        return len(self._entries)
