"""A read model that has not caught up yet is a 503 the client may retry, naming what it reads."""

from __future__ import annotations

import threading

import pytest

from fleetlink.api.errors import ApiError, read_when_ready


class Model:
    def __init__(self) -> None:
        self.ready = threading.Event()


def test_a_model_still_reading_is_a_503_to_retry_and_a_caught_up_one_is_read() -> None:
    model = Model()
    with pytest.raises(ApiError) as refused:
        read_when_ready(model, "the alerts")
    assert (refused.value.status, refused.value.error) == (503, "not-ready")
    assert refused.value.detail == "still reading the alerts"
    assert refused.value.headers == {"Retry-After": "1"}
    model.ready.set()
    assert read_when_ready(model, "the alerts") is model
