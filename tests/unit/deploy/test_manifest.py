from __future__ import annotations

from pathlib import Path

import pytest

from ondo.deploy.manifest import parse_manifest, read_manifest
from ondo.errors import ConfigError
from ondo.functions.model import FunctionConfig


def make_app(root: Path, yaml_text: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ondo.yaml").write_text(yaml_text)
    for name, text in (files or {"resize/app.py": "def handler(e, c):\n    return e\n"}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_defaults_and_full_settings(tmp_path: Path) -> None:
    app = make_app(
        tmp_path / "shop",
        "functions:\n"
        "  resize:\n"
        "    timeout: 5\n"
        "    memory: 256\n"
        "    concurrency: 3\n"
        "    network: true\n"
        "    environment: {LEVEL: info, DEBUG: false, N: 3}\n",
    )
    manifest = read_manifest(app)
    assert manifest.app == "shop"
    fn = manifest.functions["resize"]
    assert fn.code_dir == (app / "resize").resolve()
    assert fn.config.handler == "app.handler"
    assert (fn.config.timeout, fn.config.memory, fn.config.concurrency) == (5, 256, 3)
    assert fn.config.network is True
    assert fn.config.environment == {"LEVEL": "info", "DEBUG": "false", "N": "3"}
    assert fn.config.event == "cloudevent"


def test_event_names_the_shape_the_handler_takes(tmp_path: Path) -> None:
    app = make_app(tmp_path / "shop", "functions:\n  resize:\n    event: s3\n")
    config = read_manifest(app).functions["resize"].config
    assert config.event == "s3"
    assert FunctionConfig.from_json(config.to_json()) == config
    assert FunctionConfig.from_json({"handler": "app.handler"}).event == "cloudevent"  # older rows


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("functions:\n  resize:\n    timeout: 901\n", "ondo.yaml:3 (functions.resize.timeout)"),
        ("functions:\n  resize:\n    timout: 5\n", "unknown key 'timout'"),
        ("functions:\n  resize:\n    memory: lots\n", "must be a number, got 'lots'"),
        ("functions:\n  resize:\n    handler: nope\n", "module.function"),
        ("functions:\n  resize:\n    handler: missing.handler\n", "handler module 'missing'"),
        ("functions:\n  resize:\n    code: ../elsewhere\n", "outside the app directory"),
        ("functions:\n  resize:\n    network: yes please\n", "true, false or"),
        (
            "functions:\n  resize:\n    network:\n      allow: [db.local:5432]\n",
            "ondo.yaml:4 (functions.resize.network.allow.0): 'db.local:5432' is not an allowed",
        ),
        ("functions:\n  resize:\n    network: {allow: ['127.0.0.1:0']}\n", "IP address and a port"),
        ("functions:\n  resize:\n    network: {allow: '127.0.0.1:1'}\n", "must be a list"),
        ("functions:\n  resize:\n    network: {deny: []}\n", "unknown key 'deny'"),
        ("functions:\n  Resize_Bad:\n    code: ./resize\n", "must match"),
        ("functions:\n  resize:\n    requirements: nope.txt\n", "nope.txt does not exist"),
        ("functions:\n  resize: {a: [1,\n", "not valid YAML"),
        ("functions:\n  resize: {}\n  resize: {}\n", "duplicate key 'resize'"),
        ("servers: 3\n", "unknown key 'servers'"),
        (
            "functions:\n  resize:\n    event: sqs\n",
            "ondo.yaml:3 (functions.resize.event): must be one of cloudevent, s3, eventbridge",
        ),
        ("- a\n- b\n", "top level must be a mapping"),
    ],
)
def test_invalid_manifests_name_file_line_and_field(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    app = make_app(tmp_path / "app", yaml_text)
    with pytest.raises(ConfigError) as caught:
        read_manifest(app)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("ondo.yaml")


def test_missing_manifest_says_where(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs an ondo\.yaml"):
        read_manifest(tmp_path)


def test_error_line_points_at_the_field(tmp_path: Path) -> None:
    text = "name: shop\nfunctions:\n  resize:\n    handler: app.handler\n    concurrency: 0\n"
    with pytest.raises(ConfigError, match=r"^ondo.yaml:5 \(functions.resize.concurrency\)"):
        parse_manifest(text, make_app(tmp_path / "a", text), "ondo.yaml")


ALIAS_BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 9)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, r"ondo.yaml:\d+: more than 100000 values .*alias expansion limit"),
        ("name: &a [*a]\n", "ondo.yaml:1: an alias refers to the node that contains it"),
        ("functions: &f {x: *f}\n", "self-referencing alias"),
        ("name: " + "[" * 100_000 + "]" * 100_000, "ondo.yaml:1: nested deeper than 64 levels"),
        ("".join(" " * i + "-\n" for i in range(100)), "ondo.yaml:65: nested deeper than 64"),
        ("name: " + "1" * 5000, "ondo.yaml:1: a number of more than 1000 digits"),
        ("? [a]\n: 1\n", "keys must be text"),
    ],
    ids=["alias-bomb", "self-alias", "self-alias-map", "deep-flow", "deep-block", "int", "key"],
)
def test_hostile_yaml_is_refused_naming_line_and_limit(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_manifest(text, Path("."), "ondo.yaml")


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    app = make_app(
        tmp_path / "shop",
        "functions:\n"
        "  resize: &fn {timeout: 5, environment: &env {LEVEL: info}}\n"
        "  thumb: {timeout: 6, environment: *env}\n",
        {"resize/app.py": "def handler(e, c): ...\n", "thumb/app.py": "def handler(e, c): ...\n"},
    )
    manifest = read_manifest(app)
    assert manifest.functions["thumb"].config.environment == {"LEVEL": "info"}


def test_a_manifest_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    app = make_app(tmp_path / "big", "name: big\n# " + "x" * (1024 * 1024) + "\n")
    with pytest.raises(ConfigError, match=r"is \d+ bytes; the limit is 1048576 bytes"):
        read_manifest(app)


def test_network_allow_turns_network_on_with_host_exceptions(tmp_path: Path) -> None:
    text = "functions:\n  resize:\n    network:\n      allow: ['127.0.0.1:5432', '[::1]:6379']\n"
    fn = parse_manifest(text, make_app(tmp_path / "a", text), "ondo.yaml").functions["resize"]
    assert fn.config.network is True
    assert fn.config.network_allow == ("127.0.0.1:5432", "[::1]:6379")
    assert FunctionConfig.from_json(fn.config.to_json()) == fn.config  # stored and read back


def test_permissions_become_the_scope_of_the_functions_token(tmp_path: Path) -> None:
    app = make_app(
        tmp_path / "app",
        "functions:\n"
        "  resize:\n"
        "    permissions:\n"
        "      emit: [image.resized, 'image.*', image.resized]\n"
        "      invoke: report\n",
    )
    config = read_manifest(app).functions["resize"].config
    assert config.permissions == (
        "emit:type:image.resized",
        "emit:type:image.*",
        "invoke:function:report",
    )
    assert FunctionConfig.from_json(config.to_json()) == config
    plain = make_app(tmp_path / "plain", "functions:\n  resize: {}\n")
    assert read_manifest(plain).functions["resize"].config.permissions == ()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "functions:\n  resize:\n    permissions: [emit]\n",
            "ondo.yaml:3 (functions.resize.permissions): must be a mapping",
        ),
        (
            "functions:\n  resize:\n    permissions:\n      read: ['*']\n",
            "ondo.yaml:4 (functions.resize.permissions.read): unknown key 'read'",
        ),
        (
            "functions:\n  resize:\n    permissions:\n      emit: [a.b, 'x[ab]']\n",
            "ondo.yaml:4 (functions.resize.permissions.emit.1): must be an event type",
        ),
        (
            "functions:\n  resize:\n    permissions:\n      invoke: [Report]\n",
            "(functions.resize.permissions.invoke.0): must be a function name",
        ),
        (
            "functions:\n  resize:\n    permissions:\n      emit: {a: b}\n",
            "(functions.resize.permissions.emit): must be a list of event types",
        ),
        (
            "functions:\n  resize:\n    environment: {ONDO_TOKEN: x}\n",
            "(functions.resize.environment.ONDO_TOKEN): ONDO_TOKEN is set by the platform",
        ),
    ],
)
def test_invalid_permissions_name_file_line_and_field(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    app = make_app(tmp_path / "app", yaml_text)
    with pytest.raises(ConfigError) as caught:
        read_manifest(app)
    assert expected in str(caught.value)


def test_secrets_are_declared_by_name_and_stored_as_names(tmp_path: Path) -> None:
    app = make_app(
        tmp_path / "shop", "functions:\n  resize:\n    secrets: [DB_PASSWORD, API_KEY]\n"
    )
    config = read_manifest(app).functions["resize"].config
    assert config.secrets == ("DB_PASSWORD", "API_KEY")
    assert FunctionConfig.from_json(config.to_json()) == config
    assert FunctionConfig.from_json({"handler": "app.handler"}).secrets == ()  # older rows


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ("DB_PASSWORD", "ondo.yaml:3 (functions.resize.secrets): must be a list"),
        ("[db_password]", "ondo.yaml:3 (functions.resize.secrets.0): 'db_password' is not a"),
        ("[A, 1B]", "(functions.resize.secrets.1): '1B' is not a secret name"),
        ("[A, A]", "(functions.resize.secrets.1): 'A' is listed twice"),
        ("[{x: 1}]", "is not a secret name"),
        ("[ONDO_TOKEN]", "set by the platform for each invocation"),
    ],
)
def test_bad_secret_declarations_name_line_and_field(
    tmp_path: Path, secrets: str, expected: str
) -> None:
    app = make_app(tmp_path / "shop", f"functions:\n  resize:\n    secrets: {secrets}\n")
    with pytest.raises(ConfigError) as refused:
        read_manifest(app)
    assert expected in str(refused.value)


def test_a_name_is_an_environment_setting_or_a_secret_not_both(tmp_path: Path) -> None:
    app = make_app(
        tmp_path / "shop",
        "functions:\n  resize:\n    environment: {TOKEN: x}\n    secrets: [TOKEN]\n",
    )
    with pytest.raises(ConfigError, match=r"functions.resize.environment.TOKEN.*also in `secrets`"):
        read_manifest(app)
