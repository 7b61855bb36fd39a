"""The tool layer's errors, under `PilothouseError`.

Every message is written for two readers: the person reading a log and the model
reading a tool result. It says what failed, where (a URL without query string or
credentials, a tool name, a JSON pointer) and what to do. None carries a secret.
"""

from __future__ import annotations

from pilothouse.errors import ConfigError, PilothouseError


class ToolError(PilothouseError):
    """A tool could not do what it was asked. Its text is shown to the model."""


class ToolConfigError(ToolError, ConfigError):
    """A tool entry in a copilot's configuration is wrong (file, field, what to do)."""


class ToolArgumentsError(ToolError):
    """The arguments a model sent do not match the tool's JSON Schema."""


class ToolNotFoundError(ToolError):
    """No tool of that name in the toolset."""


class ApprovalRequiredError(ToolError):
    """The tool changes something and needs a person's approval before it runs."""


# --- outbound HTTP -------------------------------------------------------------------


class BlockedAddressError(ToolError):
    """The safe HTTP client refused a destination (private, loopback, link-local,
    metadata, ... address, or a scheme/port that is not allowed)."""


class HTTPLimitError(ToolError):
    """A response broke a limit: too large, too many redirects, too slow."""


class ToolTimeoutError(HTTPLimitError):
    """A call took longer than its time limit."""


# --- remote services (HTTP APIs, connectors) -------------------------------------------


class ServiceError(ToolError):
    """A remote service answered with an error, or could not be reached.

    `status` is the HTTP status when there was one; `retryable` says whether trying
    again later may help."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


class ServiceAuthError(ServiceError):
    """HTTP 401: the credentials are missing, wrong or expired."""


class ServicePermissionError(ServiceError):
    """HTTP 403: the credentials are valid but lack permission for this action."""


class ServiceNotFoundError(ServiceError):
    """HTTP 404: the record, project, table or path does not exist (or is hidden)."""


class ServiceBadRequestError(ServiceError):
    """HTTP 400/409/422 and other 4xx: the request was wrong; the text says why."""


class ServiceRateLimitedError(ServiceError):
    """HTTP 429: too many requests; `retry_after` seconds when the service said."""

    retryable = True

    def __init__(self, message: str, *, status: int | None = 429, retry_after: float | None = None):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class ServiceUnavailableError(ServiceError):
    """HTTP 5xx, a refused connection or a broken response: the service is down."""

    retryable = True


# --- OpenAPI and MCP --------------------------------------------------------------------


class OpenAPIDocumentError(ToolConfigError):
    """An OpenAPI document is invalid; `pointer` is the JSON pointer of the problem."""

    def __init__(self, message: str, *, source: str, pointer: str = ""):
        self.source = source
        self.pointer = pointer or "/"
        super().__init__(f"{source}: invalid OpenAPI document at {self.pointer}: {message}")


class MCPError(ToolError):
    """An MCP server could not be started, reached, or answered wrongly."""


class MCPServerCrashedError(MCPError):
    """The MCP server went away (process exited, connection closed) during a call."""
