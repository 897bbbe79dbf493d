"""``fleetlink ota``: test images made the same way everywhere, releases signed and stored, and
a refused release told in one line with exit status 1, no traceback."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fleetlink.campaigns.images import ImageRepository
from fleetlink.cli import app, main
from fleetlink.contracts.campaigns import sha256_of
from fleetlink.security.keys import image_signer
from fleetlink.settings import Settings, load_settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "fleetlink.toml"
    path.write_text(f'[stack]\nstate_dir = "{tmp_path / "state"}"\n')
    return path


def settings_of(config: Path) -> Settings:
    return load_settings(config)


def test_make_image_writes_the_same_bytes_for_the_same_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    sizes = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        out = tmp_path / f"{name}.bin"
        result = runner.invoke(
            app, ["ota", "make-image", "--size", "2500000", "--seed", str(seed), str(out)]
        )
        assert result.exit_code == 0, result.output
        sizes[name] = hashlib.sha256(out.read_bytes()).hexdigest()
        assert out.stat().st_size == 2_500_000  # more than one 1 MiB chunk, and a part one
    assert sizes["a"] == sizes["b"]
    assert sizes["a"] != sizes["c"]
    assert (
        runner.invoke(app, ["ota", "make-image", "--size", "0", str(tmp_path / "d")]).exit_code != 0
    )


def test_make_image_makes_the_directories_it_writes_into(tmp_path: Path) -> None:
    out = tmp_path / "build" / "os.bin"  # as the README shows it, from a fresh checkout
    result = CliRunner().invoke(app, ["ota", "make-image", "--size", "1000", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size == 1000


def test_publish_signs_and_stores_and_images_lists(tmp_path: Path, config: Path) -> None:
    runner = CliRunner()
    image = tmp_path / "image.bin"
    image.write_bytes(b"firmware " * 1000)
    args = ["--config", str(config), "ota", "publish", str(image)]
    release = ["--name", "infotainment", "--version", "2026.41", "--target", "fl-sedan"]
    result = runner.invoke(app, [*args, *release])
    assert result.exit_code == 0, result.output
    assert sha256_of(image.read_bytes()) in result.output
    settings = settings_of(config)
    stored = ImageRepository(settings.image_dir()).get("infotainment", "2026.41")
    assert stored is not None
    assert stored.length == 9000
    assert stored.sig is not None
    assert stored.kid == image_signer(settings).kid  # the image repository's key
    listed = runner.invoke(app, ["--config", str(config), "ota", "images"])
    assert listed.exit_code == 0
    assert "infotainment" in listed.output
    assert "2026.41" in listed.output


def test_a_refused_release_is_one_line_and_exit_status_one(
    tmp_path: Path,
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = tmp_path / "first.bin", tmp_path / "second.bin"
    first.write_bytes(b"one build")
    second.write_bytes(b"another build")
    release = ["--name", "infotainment", "--version", "2026.41", "--target", "fl-sedan"]

    def fleetlink(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["fleetlink", "--config", str(config), *args])
        with pytest.raises(SystemExit) as exited:
            main()
        return int(exited.value.code or 0)

    assert fleetlink("ota", "publish", str(first), *release) == 0
    capsys.readouterr()
    assert fleetlink("ota", "publish", str(second), *release) == 1
    err = capsys.readouterr().err
    assert "released already with other bytes" in err
    assert "Traceback" not in err
    assert fleetlink("ota", "publish", str(tmp_path / "missing.bin"), *release) == 1
    assert "cannot read" in capsys.readouterr().err
    assert (
        fleetlink(
            "ota", "publish", str(first), "--name", "Bad Name", "--version", "1", "--target", "x"
        )
        == 1
    )
    assert "cannot release" in capsys.readouterr().err
