"""Every error ondo raises on purpose, each "Raised when …"; messages say what, where, how to fix.

Modules add their classes here, grouped under their heading, rather than defining errors locally.
They know nothing of HTTP: api/errors.py maps each class to the status the API answers with.
"""

from __future__ import annotations


class OndoError(Exception):
    """Base of every error ondo raises on purpose."""

    code: str = "error"


# --- configuration and input -------------------------------------------------------------


class ConfigError(OndoError):
    """Raised when ondo.yaml or a setting is invalid; the message names file, line and field."""

    code = "invalid_config"


class ConfigLimitExceeded(ConfigError):
    """Raised when ondo.yaml passes a limit (size, depth, aliases expanded); names the limit."""

    code = "limit_exceeded"


class SourceKindUnavailable(ConfigError):
    """Raised when a source kind's module or library cannot be imported (names the extra)."""

    code = "source_kind_unavailable"


class ValidationError(OndoError):
    """Raised when a request or argument is malformed; the message names the field."""

    code = "invalid_request"


class InputLimitExceeded(ValidationError):
    """Raised when input passes a limit (JSON depth or integer length, YAML aliases, batch size).

    The message names the limit that was passed and how to stay within it.
    """

    code = "limit_exceeded"


class DurationError(ValidationError):
    """Raised when a duration is not understood; the message names the text and the forms."""

    code = "invalid_duration"


class DataDirInUse(OndoError):
    """Raised when another ondo process holds the data directory's lock (`ondo.lock`)."""

    code = "data_dir_in_use"


class NotFound(OndoError):
    """Raised when a named resource (function, rule, invocation, event) does not exist."""

    code = "not_found"


class Gone(NotFound):
    """Raised when what was asked for existed but retention has deleted it (older than the
    retention of its kind)."""

    code = "gone"


class Conflict(OndoError):
    """Raised when a request conflicts with the current state of a resource."""

    code = "conflict"


class PayloadTooLarge(OndoError):
    """Raised when a request body or event exceeds its size limit."""

    code = "payload_too_large"


class Unauthorized(OndoError):
    """Raised when a request carries no valid bearer token (none, unknown, expired or revoked)."""

    code = "unauthorized"


class RateLimited(OndoError):
    """Raised when a caller (a principal, or an address without a token) has used up its
    request rate; `retry_after_s` says when the next request will be let through."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Forbidden(OndoError):
    """Raised when a caller is known but its role, policies or consent do not allow the call."""

    code = "forbidden"


# --- patterns ---------------------------------------------------------------------------


class PatternError(OndoError, ValueError):
    """Raised when an event pattern is invalid; the message names the path and the reason."""

    code = "invalid_pattern"


class PatternTooLarge(PatternError):
    """Raised when a pattern exceeds a bound of ondo.patterns.limits (the message names it)."""

    code = "pattern_too_large"


# --- functions and runtime --------------------------------------------------------------


class DeployError(OndoError):
    """Raised when a function cannot be deployed (import failure, bad requirements, size)."""

    code = "deploy_failed"


class HandlerImportError(DeployError):
    """Raised when a handler fails to import or is missing; the message carries the traceback."""

    code = "handler_import_failed"


class RequirementsError(DeployError):
    """Raised when installing requirements fails; names the package and pip's reason."""

    code = "requirements_failed"


class UnsafeRequirements(RequirementsError):
    """Raised when a requirements file reaches outside the app (a path, an include, an index
    option) without the operator allowing it; names the file and line."""

    code = "requirements_refused"


class NetworkUnavailable(DeployError):
    """Raised when a function asks for `network` but this machine cannot filter its egress."""

    code = "network_unavailable"


class ConcurrencyExhausted(OndoError):
    """Raised when a function already runs as many invocations as its concurrency allows."""

    code = "concurrency_exhausted"


class RuntimeUnavailable(OndoError):
    """Raised when the runtime cannot start a worker for a function."""

    code = "runtime_unavailable"


class CodeUnavailable(RuntimeUnavailable):
    """Raised when a version's code bundle or dependency layer is neither in this process's
    data dir nor in the shared store (functions/shared.py)."""

    code = "code_unavailable"


# --- events and bus ---------------------------------------------------------------------


class EventError(ValidationError):
    """Raised when a CloudEvent is malformed; the message names the attribute (and batch index)."""

    code = "invalid_event"


class UnsupportedMediaType(ValidationError):
    """Raised when a request body's Content-Type is not one the endpoint reads."""

    code = "unsupported_media_type"


class BusError(OndoError):
    """Raised when the event log cannot store or read events (disk full, I/O error, corruption)."""

    code = "bus_unavailable"


class BusClosed(BusError):
    """Raised when the event log is used after it was closed (the platform is shutting down)."""

    code = "bus_closed"


# --- store ------------------------------------------------------------------------------


class StoreError(OndoError):
    """Raised when the store (SQLite or PostgreSQL) cannot read or write state."""

    code = "store_unavailable"


class StoreUnavailable(StoreError):
    """Raised when the store cannot be reached or opened; the message names the URL and the fix."""


class DuplicateKey(StoreError):
    """Raised when a write breaks a uniqueness or foreign-key constraint of the store."""

    code = "duplicate_key"


class StoreConflict(StoreError):
    """Raised when a transaction lost to concurrent ones more times than it may retry."""

    code = "store_conflict"


# --- rules ------------------------------------------------------------------------------


class RuleSyntaxError(ValidationError):
    """Raised when rule text does not parse; the message gives the column and a hint."""

    code = "rule_syntax"


class RuleError(ValidationError):
    """Raised when a rule parses but cannot be accepted (unknown function, bad window, types)."""

    code = "invalid_rule"


class RuleTooLarge(RuleError):
    """Raised when a rule exceeds a bound of ondo.rules.limits (the message names it)."""

    code = "rule_too_large"


class ActionNotAvailable(RuleError):
    """Raised when a rule uses an action word that this version of ondo cannot carry out yet."""

    code = "action_not_available"


# --- secrets ----------------------------------------------------------------------------


class SecretsKeyMissing(OndoError):
    """Raised when secrets are used on a store shared by several processes and no key was given
    (ONDO_SECRETS_KEY): each node must hold the same key, so none is made up."""

    code = "secrets_key_missing"


class SecretUnreadable(OndoError):
    """Raised when a stored secret cannot be decrypted: another key, a damaged key, or a
    ciphertext that was altered or moved to another name."""

    code = "secret_unreadable"


# --- the CLI's client -------------------------------------------------------------------


class ClientError(OndoError):
    """Raised when the platform answers with an error or cannot be reached.

    `status` is the HTTP status the platform answered with (0: no answer), `code` its error code.
    """

    def __init__(self, message: str, status: int = 0, code: str = "client_error") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
