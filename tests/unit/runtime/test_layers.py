"""build_layer: pip install once per requirements content, offline-friendly."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ondo.errors import RequirementsError
from ondo.runtime import build_layer


def make_wheel(directory: Path, name: str = "tinypkg", value: str = "tiny") -> Path:
    """A minimal pure-Python wheel, built by hand so no network or build backend is needed."""
    wheel = directory / f"{name}-0.1-py3-none-any.whl"
    info = f"{name}-0.1.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        archive.writestr(f"{info}/RECORD", record)
    return wheel


def test_installs_into_a_directory_named_by_the_content_hash_and_reuses_it(
    tmp_path: Path,
) -> None:
    wheel = make_wheel(tmp_path)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n./{wheel.name}\n")
    layers = tmp_path / "layers"

    layer = build_layer(requirements, layers)

    assert layer.parent == layers and len(layer.name) == 64
    assert (layer / "tinypkg" / "__init__.py").read_text() == "VALUE = 'tiny'\n"
    assert [p.name for p in layers.iterdir()] == [layer.name]  # no staging dir left behind
    wheel.unlink()  # a second install would now fail: proves the layer is reused
    assert build_layer(requirements, layers) == layer


def test_different_content_gets_a_different_layer(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path)
    first = tmp_path / "a.txt"
    first.write_text(f"--no-index\n./{wheel.name}\n")
    second = tmp_path / "b.txt"
    second.write_text(f"--no-index\n./{wheel.name}\n# another comment\n")
    assert build_layer(first, tmp_path / "layers") != build_layer(second, tmp_path / "layers")


def test_unknown_package_raises_requirements_error_naming_it(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-index\nondo-no-such-package-xyz==1.0\n")
    with pytest.raises(RequirementsError) as caught:
        build_layer(requirements, tmp_path / "layers")
    message = str(caught.value)
    assert "ondo-no-such-package-xyz" in message
    assert "No matching distribution" in message
    assert not (tmp_path / "layers").exists() or not any((tmp_path / "layers").iterdir())


def test_missing_requirements_file_raises_requirements_error(tmp_path: Path) -> None:
    with pytest.raises(RequirementsError, match="cannot read"):
        build_layer(tmp_path / "nope.txt", tmp_path / "layers")
