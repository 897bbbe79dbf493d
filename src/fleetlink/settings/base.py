"""What every settings section shares: strict sections, ports, topic names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from fleetlink.contracts.topics import KafkaTopic

LOCALHOST = "127.0.0.1"
TOPIC_NAME = r"^[A-Za-z0-9._-]{1,249}$"

Port = Annotated[int, Field(ge=1, le=65535)]


class Section(BaseModel):
    """A settings section: unknown keys and changes after loading are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def refuse_topic_keys(section: str, data: object, replaced: dict[str, KafkaTopic]) -> None:
    """Stop at start on a topic-name key of earlier versions, naming what replaced it."""
    if not isinstance(data, dict):
        return
    for key, topic in replaced.items():
        if key in data:
            raise ValueError(
                f"{section}.{key} is gone: topic names come from the contract; rename this one "
                f'with [topics] names = {{"{topic}" = "..."}}, or all with topics.prefix'
            )
