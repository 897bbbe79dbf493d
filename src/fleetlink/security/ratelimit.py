"""Token buckets per key (a vehicle, an API client): a flood from one never slows the others."""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    """``rate`` tokens a second, up to ``burst`` saved; one bucket per key, the least recently
    seen forgotten beyond ``max_keys`` (a forgotten key starts again with a full bucket)."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 1_000_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def allow(self, key: str, now: float, cost: float = 1.0) -> bool:
        tokens = self._refill(key, now)
        allowed = tokens >= cost - 1e-9  # float sums: 10 x 0.1 s refills one whole token
        self._buckets[key] = (max(0.0, tokens - cost) if allowed else tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self, key: str, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there again."""
        return max(0.0, (cost - self._refill(key, now)) / self.rate)

    def _refill(self, key: str, now: float) -> float:
        saved = self._buckets.get(key)
        if saved is None:
            return self.burst
        tokens, at = saved
        return min(self.burst, tokens + max(0.0, now - at) * self.rate)
