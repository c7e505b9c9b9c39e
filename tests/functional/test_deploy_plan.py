"""What one app's deploy may not do to another's, and the defaults a deploy relies on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.functional.platform import RunningPlatform

HANDLER = "def handler(event, context):\n    return {'seen': event}\n"


def write_app(
    root: Path,
    functions: list[str],
    rules: list[dict[str, Any]] | None = None,
    name: str | None = None,
    body: str = HANDLER,
) -> Path:
    """An app directory: ondo.yaml (with `name:` unless None) and one handler per function."""
    root.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"functions": {f: {} for f in functions}, "rules": rules or []}
    if name is not None:
        manifest["name"] = name
    (root / "ondo.yaml").write_text(yaml.safe_dump(manifest))
    for function in functions:
        (root / function).mkdir(exist_ok=True)
        (root / function / "app.py").write_text(body)
    return root


HEAT_RULE = {"name": "heat", "when": "on sensor.hot do invoke heat-handler"}


def test_taking_over_another_apps_function_or_rule_is_refused_naming_the_owner(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    insure = write_app(tmp_path / "insure", ["heat-handler"], [HEAT_RULE], name="insure")
    assert platform.cli("deploy", str(insure)).returncode == 0
    other = write_app(tmp_path / "other", ["heat-handler"], [HEAT_RULE], name="other")
    for args in (["--dry-run"], []):
        refused = platform.cli("deploy", str(other), *args)
        assert refused.returncode == 1, refused.stdout
        assert "function 'heat-handler' belongs to app 'insure'" in refused.stderr
        assert "rule 'heat' belongs to app 'insure'" in refused.stderr
        assert "--take-over" in refused.stderr
    with platform.client() as api:
        assert api.get("/v1/functions/heat-handler").json()["app"] == "insure"
        assert api.get("/v1/rules/heat").json()["app"] == "insure"
    taken = platform.cli("deploy", str(other), "--take-over")
    assert taken.returncode == 0, taken.stderr
    assert "taken over from app 'insure'" in taken.stdout
    with platform.client() as api:
        assert api.get("/v1/functions/heat-handler").json()["app"] == "other"
        assert api.get("/v1/rules/heat").json()["app"] == "other"


def test_deleting_a_function_that_enabled_rules_invoke_is_refused_unless_forced(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    insure = write_app(tmp_path / "insure", ["heat-handler", "spare"], name="insure")
    alarm = write_app(tmp_path / "alarm", ["ring"], [HEAT_RULE], name="alarm")
    assert platform.cli("deploy", str(insure)).returncode == 0
    assert platform.cli("deploy", str(alarm)).returncode == 0
    refused = platform.cli("functions", "delete", "heat-handler")
    assert refused.returncode == 1
    assert "invoked by enabled rules of namespace 'default': heat" in refused.stderr
    # A deploy that drops the function is refused the same way, also as a dry run.
    write_app(tmp_path / "insure", ["spare"], name="insure")
    for args in (["--dry-run"], []):
        dropped = platform.cli("deploy", str(insure), *args)
        assert dropped.returncode == 1, dropped.stdout
        assert "invoked by enabled rules of namespace 'default': heat" in dropped.stderr
        assert "--force" in dropped.stderr
    with platform.client() as api:
        assert api.get("/v1/functions/heat-handler").status_code == 200
    forced = platform.cli("deploy", str(insure), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "disabled rule heat: it invoked the deleted function heat-handler" in forced.stdout
    with platform.client() as api:
        assert api.get("/v1/functions/heat-handler").status_code == 404
        assert api.get("/v1/rules/heat").json()["enabled"] is False


def test_functions_delete_force_disables_the_invoking_rules_and_says_so(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    app = write_app(tmp_path / "insure", ["heat-handler"], [HEAT_RULE], name="insure")
    assert platform.cli("deploy", str(app)).returncode == 0
    forced = platform.cli("functions", "delete", "heat-handler", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "disabled rule heat: it invoked heat-handler" in forced.stdout
    with platform.client() as api:
        assert api.get("/v1/rules/heat").json()["enabled"] is False
        assert api.get("/v1/functions/heat-handler").status_code == 404


def test_code_identical_to_an_earlier_version_makes_that_version_current_again(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    app = write_app(tmp_path / "shop", ["echo"], name="shop")
    assert platform.cli("deploy", str(app)).returncode == 0
    write_app(tmp_path / "shop", ["echo"], name="shop", body=HANDLER + "# v2\n")
    assert platform.cli("deploy", str(app)).returncode == 0
    write_app(tmp_path / "shop", ["echo"], name="shop")
    back = platform.cli("deploy", str(app))
    assert back.returncode == 0, back.stderr
    assert "identical to version 1, which becomes current again" in back.stdout
    with platform.client() as api:
        versions = api.get("/v1/functions/echo/versions").json()
    assert versions["current"] == 1
    assert [v["version"] for v in versions["versions"]] == [1, 2]
    assert all(v["created_at"] > 0 for v in versions["versions"])


def test_an_app_without_name_is_named_after_its_folder_with_dashes(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    app = write_app(tmp_path / "my_shop", ["echo"])
    out = platform.cli("deploy", str(app))
    assert out.returncode == 0, out.stderr
    assert "app my-shop " in out.stdout
    with platform.client() as api:
        assert api.get("/v1/functions/echo").json()["app"] == "my-shop"


BROKEN = "import helper\n\ndef handler(event, context):\n    return {}\n"
HELPER = "import no_such_module\n"


def test_dry_run_reports_a_handler_that_cannot_be_imported_with_the_users_frames_only(
    tmp_path: Path, platform: RunningPlatform
) -> None:
    app = write_app(tmp_path / "shop", ["echo"], name="shop")
    assert platform.cli("deploy", str(app)).returncode == 0
    write_app(tmp_path / "shop", ["echo", "fresh"], name="shop", body=BROKEN)
    (app / "echo" / "helper.py").write_text(HELPER)
    (app / "fresh" / "helper.py").write_text(HELPER)
    for args in (["--dry-run"], []):
        out = platform.cli("deploy", str(app), *args)
        assert out.returncode == 1, out.stdout
        assert "ModuleNotFoundError: No module named 'no_such_module'" in out.stderr
        assert "Traceback" in out.stderr
        assert 'app.py", line 1' in out.stderr and 'helper.py", line 1' in out.stderr
        assert "bootstrap.py" not in out.stderr and "<frozen" not in out.stderr
        assert "importlib" not in out.stderr
    dry = platform.cli("deploy", str(app), "--dry-run")
    assert "ondo.yaml:2 (functions.echo): function 'echo'" in dry.stderr
    assert "function 'fresh'" in dry.stderr
    assert "default/echo (dry run): handler" in dry.stderr  # the trial's own version never shows
    assert "echo:-" not in dry.stderr
    with platform.client() as api:
        assert api.get("/v1/functions/echo").json()["version"] == 1
        assert api.get("/v1/functions/fresh").status_code == 404
