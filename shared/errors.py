"""OpenAI-shaped errors (every failure a client sees has the same JSON envelope), and the one
configuration error."""

from __future__ import annotations

import json

from starlette.responses import Response


class ConfigError(ValueError):
    """Configuration is invalid: a setting, the upstream pools, a registry entry, a schedule.

    Every configuration error derives from this one, so a host can tell "fix the configuration"
    from a failure. It is a ValueError, as the parsers it wraps raise.
    """


class GatewayError(Exception):
    """An error answered to the client as `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.extra = extra  # more members of the error object (Azure's `innererror`)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def to_response(self, extra_headers: dict[str, str] | None = None) -> Response:
        return Response(
            content=error_body(
                self.message, type=self.type, code=self.code, param=self.param, extra=self.extra
            ),
            status_code=self.status,
            media_type="application/json",
            headers={**self.headers, **(extra_headers or {})},
        )


def error_body(
    message: str,
    *,
    type: str,
    code: str | None = None,
    param: str | None = None,
    extra: dict[str, object] | None = None,
) -> bytes:
    error = {"message": message, "type": type, "param": param, "code": code, **(extra or {})}
    return json.dumps({"error": error}).encode()


def bad_request(
    message: str, code: str = "invalid_request", param: str | None = None
) -> GatewayError:
    return GatewayError(400, message, code=code, param=param)


def unauthorized(message: str, code: str = "invalid_api_key") -> GatewayError:
    return GatewayError(401, message, type="authentication_error", code=code)


def forbidden(message: str, code: str) -> GatewayError:
    return GatewayError(403, message, type="permission_error", code=code)


def not_found(message: str, code: str) -> GatewayError:
    return GatewayError(404, message, type="not_found_error", code=code)


def server_error(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> GatewayError:
    """The gateway cannot serve the request (500) or cannot now (503: say when to retry)."""
    return GatewayError(status, message, type="server_error", code=code, headers=headers)


def upstream_failure(status: int, message: str, code: str) -> GatewayError:
    return GatewayError(status, message, type="upstream_error", code=code)
