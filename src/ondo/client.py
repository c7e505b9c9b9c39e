"""The HTTP client the CLI uses: URL and token from flags, ONDO_URL/ONDO_TOKEN, or the data dir."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from ondo.config import DEFAULT_PORT
from ondo.errors import OndoError


class ClientError(OndoError):
    """Raised when the platform answers with an error or cannot be reached."""

    def __init__(self, message: str, status: int = 0, code: str = "client_error") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def resolve_token(explicit: str | None, data_dir: Path) -> str | None:
    if explicit:
        return explicit
    if os.environ.get("ONDO_TOKEN"):
        return os.environ["ONDO_TOKEN"]
    path = data_dir / "admin.token"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class Client:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
        timeout: float = 960.0,
    ) -> None:
        self.url = (url or os.environ.get("ONDO_URL") or f"http://127.0.0.1:{DEFAULT_PORT}").rstrip(
            "/"
        )
        data_dir = data_dir or Path(os.environ.get("ONDO_DATA_DIR", ".ondo"))
        self.token = resolve_token(token, data_dir)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ClientError(
                f"cannot reach ondo at {self.url}: is it running? (`ondo up`, or set ONDO_URL)"
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"ondo at {self.url} did not answer in time") from None
        if response.status_code >= 400:
            raise _error_of(response)
        return response

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean).json()

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("POST", path, json=body, params=clean).json()

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path).json()


def _error_of(response: httpx.Response) -> ClientError:
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:500] or response.reason_phrase, "http_error"
    return ClientError(f"{message} (HTTP {response.status_code})", response.status_code, code)


def pretty(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)
