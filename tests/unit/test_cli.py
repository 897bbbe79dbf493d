"""The ``fleetlink`` command loads a sub-command's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main
from typer.testing import CliRunner

from fleetlink.cli import COMMANDS, app


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_of_the_table_loads_under_its_name(name: str) -> None:
    root = typer.main.get_command(app)
    command = root.get_command(typer.Context(root), name)  # type: ignore[attr-defined]
    assert command is not None
    assert command.name == name
    assert command.help  # its own help, not the table's line


def test_the_command_list_shows_every_command_with_the_line_of_the_table() -> None:
    listing = CliRunner().invoke(app, ["--help"])
    assert listing.exit_code == 0
    for name, (_, _, line) in COMMANDS.items():
        assert name in listing.output
        assert line.split()[0] in listing.output


PROBE = """
import sys
from typer.testing import CliRunner
from fleetlink.cli import app
result = CliRunner().invoke(app, {args!r})
assert result.exit_code == 0, result.output
heavy = ("fastapi", "quixstreams", "libsumo", "shapely")
print(" ".join(m for m in heavy if m in sys.modules))
"""


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["--help"], set()),
        (["gateway", "worker", "--help"], set()),
        (["stack", "status", "--help"], set()),
        (["api", "--help"], {"fastapi", "shapely"}),
    ],
)
def test_a_command_imports_what_it_runs_and_nothing_else(
    args: list[str], allowed: set[str]
) -> None:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert set(probe.stdout.split()) <= allowed
