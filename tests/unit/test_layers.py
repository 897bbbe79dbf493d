"""Every top-level module of fleetlink sits in exactly one layer of the import contract."""

from __future__ import annotations

import pkgutil
import re
import tomllib
from pathlib import Path

import fleetlink

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def layered_modules() -> list[str]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    return [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]


def test_every_top_level_module_is_in_exactly_one_layer() -> None:
    modules = {f"fleetlink.{info.name}" for info in pkgutil.iter_modules(fleetlink.__path__)}
    layered = layered_modules()
    assert sorted(set(layered)) == sorted(layered), "a module is in two layers"
    assert modules == set(layered), (
        f"not in a layer: {sorted(modules - set(layered))}; "
        f"in a layer but gone: {sorted(set(layered) - modules)}"
    )
