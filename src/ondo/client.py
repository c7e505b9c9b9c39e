"""The HTTP client the CLI uses: URL and token from flags, ONDO_URL/ONDO_TOKEN, or the data dir."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ondo.config import DEFAULT_PORT, env_port
from ondo.errors import ClientError

NDJSON = "application/x-ndjson"

# What to run when a resource under this path is not found.
_NOT_FOUND_HINTS = (
    ("/v1/functions/", "`ondo functions list` shows the deployed functions"),
    ("/v1/rules/", "`ondo rules list` shows the rules"),
    ("/v1/invocations/", "`ondo logs FUNCTION` shows a function's recent invocations"),
    ("/v1/events/", "`ondo events tail` shows the latest events"),
    ("/v1/trace/", "`ondo events tail` shows the latest events"),
    ("/v1/secrets/", "`ondo secrets list` shows the secrets"),
)


def resolve_token(explicit: str | None, data_dir: Path) -> tuple[str | None, str]:
    """The token and where it came from (for error messages)."""
    if explicit:
        return explicit, "--token"
    if os.environ.get("ONDO_TOKEN"):
        return os.environ["ONDO_TOKEN"], "$ONDO_TOKEN"
    path = data_dir.resolve() / "admin.token"
    try:
        return path.read_text().strip() or None, str(path)
    except OSError:
        return None, str(path)


class Client:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
        timeout: float = 960.0,
    ) -> None:
        default_url = f"http://127.0.0.1:{env_port(DEFAULT_PORT)}"
        self.url = (url or os.environ.get("ONDO_URL") or default_url).rstrip("/")
        data_dir = data_dir or Path(os.environ.get("ONDO_DATA_DIR", ".ondo"))
        self.token, self.token_source = resolve_token(token, data_dir)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        with self._reaching():
            response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise self._error_of(response, path)
        return response

    def watched(
        self, method: str, path: str, on_progress: Callable[[str], None], **kwargs: Any
    ) -> Any:
        """A request answered with NDJSON progress lines: each step to `on_progress`, then the
        result (or its error raised)."""
        headers = {**kwargs.pop("headers", {}), "Accept": NDJSON}
        with self._reaching(), self.http.stream(method, path, headers=headers, **kwargs) as answer:
            if answer.status_code >= 400:
                answer.read()
                raise self._error_of(answer, path)
            for raw in answer.iter_lines():
                doc = json.loads(raw) if raw.strip() else {}
                if "progress" in doc:
                    on_progress(str(doc["progress"]))
                elif "error" in doc:
                    error = doc["error"]
                    status = int(error.get("status", 500))
                    message = f"{error['message']} (HTTP {status})"
                    raise ClientError(message, status, str(error.get("code")))
                elif "result" in doc:
                    return doc["result"]
        raise ClientError(f"ondo at {self.url} ended the answer before its outcome; see its log")

    @contextlib.contextmanager
    def _reaching(self) -> Iterator[None]:
        """Transport failures as errors that say what to check."""
        try:
            yield
        except httpx.ConnectError:
            raise ClientError(
                f"cannot reach ondo at {self.url}: is it running? (`ondo up`, or set ONDO_URL)"
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"ondo at {self.url} did not answer in time") from None

    def _error_of(self, response: httpx.Response, path: str) -> ClientError:
        error = _error_of(response)
        if error.status == 401:
            return ClientError(self._token_advice(), 401, error.code)
        hint = next((h for prefix, h in _NOT_FOUND_HINTS if path.startswith(prefix)), None)
        if error.status == 404 and error.code == "not_found" and hint and "`ondo" not in str(error):
            return ClientError(f"{error}; {hint}", 404, error.code)
        return error

    def _token_advice(self) -> str:
        fix = (
            "set ONDO_TOKEN, pass --token TOKEN, or pass --data-dir DIR of the platform"
            " (its admin.token is read from there)"
        )
        if self.token is None:
            return (
                f"ondo at {self.url} needs a token and none was found: not in --token, not in"
                f" $ONDO_TOKEN, and {self.token_source} cannot be read; {fix}"
            )
        return f"ondo at {self.url} refused the token from {self.token_source}; {fix}"

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("POST", path, json=body, params=clean).json()

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body).json()

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path).json()

    def audit(
        self,
        *,
        about: str | None = None,
        principal: str | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> Any:
        """GET /v1/audit: `{caller, entries, next_after}` (and `decisions` with `about`;
        `about="@me"` is the caller)."""
        return self.get("/v1/audit", about=about, principal=principal, after=after, limit=limit)

    def audit_verify(self, expect: str | None = None) -> Any:
        """GET /v1/audit/verify: `{ok, checked, head, problem, broken_seq, anchors}`."""
        return self.get("/v1/audit/verify", expect=expect)

    def set_secret(self, name: str, value: bytes) -> Any:
        """Set secret `name` to `value` (sent as the raw body, never echoed back)."""
        headers = {"Content-Type": "application/octet-stream"}
        return self.request("PUT", f"/v1/secrets/{name}", content=value, headers=headers).json()

    def secrets(self) -> Any:
        """The namespace's secrets: names, dates and who set them (never values)."""
        return self.get("/v1/secrets")

    def delete_secret(self, name: str) -> Any:
        return self.delete(f"/v1/secrets/{name}")


def _error_of(response: httpx.Response) -> ClientError:
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:500] or response.reason_phrase, "http_error"
    return ClientError(f"{message} (HTTP {response.status_code})", response.status_code, code)
