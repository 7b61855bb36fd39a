"""One exception hierarchy for all of Pilothouse.

Model errors carry two facts the composition layer needs: whether retrying the same
model can help (`retryable`) and whether moving to another model can help
(`failover`). Messages say what went wrong and where, never a secret.
"""

from __future__ import annotations


class PilothouseError(Exception):
    """Root of every error Pilothouse raises on purpose."""


class ConfigError(PilothouseError):
    """A configuration file, setting or environment variable is wrong."""


class NotFoundError(PilothouseError):
    """Something asked for by name or id does not exist."""


class StorageUnavailableError(PilothouseError):
    """The shared database cannot be reached, or dropped the connection: the operation
    was not done (a transaction in flight is rolled back). Retrying later can help;
    the server answers 503 with Retry-After."""

    retryable = True
    retry_after_s = 1


# --- model errors -----------------------------------------------------------------


class ModelError(PilothouseError):
    """A model call failed. Subclasses say whether retry or failover can help."""

    retryable: bool = False
    failover: bool = True

    def __init__(self, message: str, *, model: str | None = None, status: int | None = None):
        self.model = model
        self.status = status
        prefix = f"{model}: " if model else ""
        super().__init__(prefix + message)
        self.detail = message


class RateLimitedError(ModelError):
    """The provider refused for rate or quota reasons (HTTP 429)."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status: int | None = 429,
        retry_after: float | None = None,
    ):
        super().__init__(message, model=model, status=status)
        self.retry_after = retry_after


class UnavailableError(ModelError):
    """The provider is down, overloaded or unreachable (5xx, connection refused)."""

    retryable = True


class ModelTimeoutError(ModelError):
    """The call or the stream took longer than allowed."""

    retryable = True


class BadRequestError(ModelError):
    """The request itself is wrong; the same request fails the same way elsewhere too,
    unless another provider accepts what this one does not (so failover stays allowed)."""

    retryable = False


class ContextTooLongError(BadRequestError):
    """The prompt does not fit the model's context window; a larger model may take it."""


class ContentFilteredError(ModelError):
    """The provider refused the content; another provider may answer."""


class AuthenticationError(ModelError):
    """The key is missing, wrong or lacks permission (401/403)."""


class MalformedResponseError(ModelError):
    """The provider answered something that does not follow its own wire format."""

    retryable = True


class ResponseRejectedError(ModelError):
    """The response arrived but a validator rejected it (empty, wrong schema, ...)."""


class EmptyAnswerError(ResponseRejectedError):
    """The model answered, but with nothing usable: no text, no tool call. It counts
    against the model's circuit breaker, and a fallback chain moves on."""


class CircuitOpenError(UnavailableError):
    """The circuit breaker for this model is open: calls are refused without trying.
    `cause` is the failure that opened it, so a caller can tell what the model is
    suffering from (rate limits, timeouts, ...) even when the breaker answered."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        retry_after: float | None = None,
        cause: ModelError | None = None,
    ):
        super().__init__(message, model=model)
        self.retry_after = retry_after
        self.cause = cause


class AllModelsFailedError(ModelError):
    """Every model of a fallback chain failed; `errors` holds each one, in order."""

    failover = False

    def __init__(self, errors: list[ModelError], *, model: str | None = None):
        self.errors = errors
        summary = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
        super().__init__(f"all {len(errors)} models failed ({summary})", model=model)


class ModelNotAvailableError(ModelError):
    """The model id is unknown, or its weights or key are not there."""

    failover = True
