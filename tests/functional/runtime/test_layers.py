"""A function imports its requirements from a layer mounted read-only in its sandbox."""

from __future__ import annotations

from pathlib import Path

from ondo.runtime import build_layer
from tests.functional.runtime.helpers import (
    invoke,
    make_spec,
    result_of,
    run,
    started,
    write_function,
)
from tests.unit.runtime.test_layers import make_wheel


def test_function_uses_its_layer(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, value="from the layer")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"--no-index\n./{wheel.name}\n")
    layer = build_layer(requirements, tmp_path / "layers")
    code = write_function(
        tmp_path,
        "layered",
        """
        import tinypkg
        def handler(event, context):
            return [tinypkg.VALUE, tinypkg.__file__]
        """,
    )

    async def scenario() -> None:
        async with started() as runtime:
            value, where = result_of(await invoke(runtime, make_spec(code, layer_dir=layer)))
            assert value == "from the layer"
            assert where == "/opt/python/tinypkg/__init__.py"

    run(scenario)
