"""The HTTP client the CLI uses: URL and token from flags, ONDO_URL/ONDO_TOKEN, a saved login
(`ondo login`, ondo/credentials.py), or the data dir."""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ondo import credentials
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


def resolve_token(
    explicit: str | None, data_dir: Path, url: str | None = None
) -> tuple[str | None, str]:
    """The token and where it came from (for error messages): --token, $ONDO_TOKEN, the login
    saved for `url`, then the data dir's admin.token."""
    if explicit:
        return explicit, "--token"
    if os.environ.get("ONDO_TOKEN"):
        return os.environ["ONDO_TOKEN"], "$ONDO_TOKEN"
    if url is not None:
        saved = credentials.token_for(url)
        if saved:
            return saved, f"the login saved for {url.rstrip('/')} ({credentials.path()})"
    path = data_dir.resolve() / "admin.token"
    try:
        return path.read_text().strip() or None, str(path)
    except OSError:
        return None, str(path)


def platform_url(url: str | None) -> str:
    """The platform's base URL: `url`, else $ONDO_URL, else the local default."""
    default_url = f"http://127.0.0.1:{env_port(DEFAULT_PORT)}"
    return (url or os.environ.get("ONDO_URL") or default_url).rstrip("/")


class Client:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        data_dir: Path | None = None,
        timeout: float = 960.0,
        cacert: str | None = None,
    ) -> None:
        self.url = platform_url(url)
        data_dir = data_dir or Path(os.environ.get("ONDO_DATA_DIR", ".ondo"))
        self.token, self.token_source = resolve_token(token, data_dir, self.url)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.cacert = cacert or os.environ.get("ONDO_CACERT") or None
        self.http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, verify=trust(self.cacert)
        )

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
        except httpx.ConnectError as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                raise ClientError(self._trust_advice(exc)) from None
            raise ClientError(
                f"cannot reach ondo at {self.url}: is it running? (`ondo up`, or set ONDO_URL)"
            ) from None
        except httpx.TimeoutException:
            raise ClientError(f"ondo at {self.url} did not answer in time") from None

    def _error_of(self, response: httpx.Response, path: str) -> ClientError:
        error = _error_of(response)
        if error.status == 401:
            return ClientError(self._token_advice(), 401, error.code)
        if error.status == 429 and error.code == "rate_limited":
            wait = response.headers.get("Retry-After", "1")
            return ClientError(
                f"ondo at {self.url} is limiting this caller's request rate: wait {wait}s and"
                f" run the command again ({error})",
                429,
                error.code,
            )
        hint = next((h for prefix, h in _NOT_FOUND_HINTS if path.startswith(prefix)), None)
        if error.status == 404 and error.code == "not_found" and hint and "`ondo" not in str(error):
            return ClientError(f"{error}; {hint}", 404, error.code)
        return error

    def _trust_advice(self, exc: httpx.ConnectError) -> str:
        trusted = (
            f"the certificates in {self.cacert}" if self.cacert else "the system's trust store"
        )
        return (
            f"ondo at {self.url} sent a certificate that {trusted} does not vouch for ({exc});"
            " pass --cacert FILE (or set ONDO_CACERT) naming the platform's certificate or its CA"
        )

    def _token_advice(self) -> str:
        fix = (
            f"run `ondo login --url {self.url}` with a token an admin gave you, set ONDO_TOKEN,"
            " pass --token TOKEN, or pass --data-dir DIR of the platform (its admin.token is"
            " read from there)"
        )
        if self.token is None:
            return (
                f"ondo at {self.url} needs a token and none was found: not in --token, not in"
                f" $ONDO_TOKEN, no login saved for it, and {self.token_source} cannot be read;"
                f" {fix}"
            )
        return (
            f"ondo at {self.url} refused the token from {self.token_source} (unknown, expired"
            f" or revoked); {fix}"
        )

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

    # --- identities ---------------------------------------------------------------------------

    def add_user(self, name: str, role: str, kind: str, namespace: str | None) -> Any:
        body = {"name": name, "role": role, "kind": kind}
        return self.post("/v1/users", body, namespace=namespace)

    def users(self, namespace: str | None = None) -> Any:
        return self.get("/v1/users", namespace=namespace)

    def set_user_role(self, name: str, role: str, namespace: str | None = None) -> Any:
        params = _only(namespace=namespace)
        return self.request("PATCH", f"/v1/users/{name}", json={"role": role}, params=params).json()

    def remove_user(self, name: str, namespace: str | None = None) -> Any:
        return self.request("DELETE", f"/v1/users/{name}", params=_only(namespace=namespace)).json()

    def create_token(
        self,
        principal: str | None,
        expires_in: str | None,
        label: str | None,
        namespace: str | None = None,
    ) -> Any:
        body = {"principal": principal, "expires_in": expires_in, "label": label}
        return self.post("/v1/tokens", {k: v for k, v in body.items() if v}, namespace=namespace)

    def tokens(self, namespace: str | None = None) -> Any:
        return self.get("/v1/tokens", namespace=namespace)

    def revoke_token(self, token_id: str, namespace: str | None = None) -> Any:
        path = f"/v1/tokens/{token_id}"
        return self.request("DELETE", path, params=_only(namespace=namespace)).json()

    def add_policy(self, principal: str, permission: str, resource: str | None) -> Any:
        body = {"principal": principal, "permission": permission, "resource": resource or "*"}
        return self.post("/v1/policies", body)

    def policies(self) -> Any:
        return self.get("/v1/policies")

    def remove_policy(self, policy_id: str) -> Any:
        return self.delete(f"/v1/policies/{policy_id}")

    def login(self) -> Any:
        return self.post("/v1/login")

    def whoami(self) -> Any:
        return self.get("/v1/whoami")


def _only(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def trust(cacert: str | None) -> ssl.SSLContext | bool:
    """What https connections are verified against: `cacert`'s certificates, or the system's."""
    if cacert is None:
        return True
    try:
        return ssl.create_default_context(cafile=cacert)
    except FileNotFoundError:
        raise ClientError(f"--cacert / ONDO_CACERT: {cacert} does not exist") from None
    except ssl.SSLError as exc:  # before OSError, which it is a kind of
        raise ClientError(
            f"--cacert / ONDO_CACERT: {cacert} holds no PEM certificate ({exc.reason}); give the"
            " platform's certificate (what `ondo up --tls-cert` serves) or its CA's"
        ) from None
    except OSError as exc:
        raise ClientError(f"--cacert / ONDO_CACERT: cannot read {cacert}: {exc.strerror}") from None


def _error_of(response: httpx.Response) -> ClientError:
    try:
        error = response.json()["error"]
        message, code = str(error["message"]), str(error["code"])
    except (ValueError, KeyError, TypeError):
        message, code = response.text[:500] or response.reason_phrase, "http_error"
    return ClientError(f"{message} (HTTP {response.status_code})", response.status_code, code)
