"""One request's frame: its account, the caller, the route's work, and one answer and one access
line however it ends."""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shared.errors import GatewayError, server_error
from shared.gateway import Gateway, get_gateway
from shared.http.access import authenticate, check_network
from shared.http.inbound import request_id_of
from shared.protection.client_ip import client_ip
from shared.registry.systems import Caller
from shared.usage.account import Account

log = logging.getLogger("tollgate.access")

Work = Callable[[Gateway, Account, Caller], Awaitable[Response]]


async def serve(request: Request, route: str, operation: str, work: Work) -> Response:
    """One request's frame: its account, the caller, `work`, and an answer however it ends
    (the account closed once, the access line written)."""
    begun = _begin(request, route, operation)
    if isinstance(begun, Response):
        return begun
    gateway, account = begun
    request_id = account.request_id
    try:
        caller = await _caller(request, gateway, account)
        response = await work(gateway, account, caller)
    except GatewayError as exc:
        account.close_error(exc.status, exc.code)
        response = exc.to_response({"x-request-id": request_id})
    except ClientDisconnect:  # gone before its body arrived (or cut off as too slow)
        account.close_disconnected()
        response = Response(status_code=499, headers={"x-request-id": request_id})
    except Exception as exc:  # a bug: an OpenAI-shaped 500, never a stack trace to the client
        # Where, not what: an exception's message could quote the request.
        where = " < ".join(f"{f.name}:{f.lineno}" for f in traceback.extract_tb(exc.__traceback__))
        log.error("request_id=%s unhandled %s at %s", request_id, type(exc).__name__, where)
        account.close_error(500, "internal_error")
        error = server_error(500, "The gateway failed.", "internal_error")
        response = error.to_response({"x-request-id": request_id})
    except BaseException:
        account.close_error(499, "cancelled")
        raise
    _log_access(account, response)
    return response


async def _caller(request: Request, gateway: Gateway, account: Account) -> Caller:
    """Who is calling, from where they may: the gateway's network allow-list, the key, then
    the system's own allow-list."""
    check_network(gateway.networks, account.client_ip)
    caller = await authenticate(request, gateway.registry, gateway.entra)
    account.system, account.key_id = caller.system.id, caller.key_id
    check_network(caller.system.networks, account.client_ip, f"system '{caller.system.id}'")
    return caller


def _begin(request: Request, route: str, operation: str) -> tuple[Gateway, Account] | Response:
    """The gateway and the request's account, or the answer when the gateway cannot start."""
    request_id = request_id_of(request)
    try:
        gateway = get_gateway()
    except GatewayError as exc:
        return exc.to_response({"x-request-id": request_id})
    return gateway, gateway.account(request_id, route, operation, _client(request, gateway))


def _client(request: Request, gateway: Gateway) -> str:
    peer = request.client.host if request.client else None
    return client_ip(peer, request.headers.get("x-forwarded-for"), gateway.proxies)


def _log_access(account: Account, response: Response) -> None:
    """One line per request, when its answer begins (a stream's end is in its usage record)."""
    fields = {
        "request_id": account.request_id,
        "route": account.route,
        "operation": account.operation,
        "system": account.system,
        "model": account.model,
        "status": response.status_code,
        "error_code": account.error_code or _code_of(response),
        "upstream": account.deployment,
        "attempts": account.attempts,
        "stream": account.stream,
        "duration_ms": round(account.elapsed_ms(), 3),
    }
    log.info("request", extra=fields)


def _code_of(response: Response) -> str:
    """An error answer's code, when the account has not closed on it (a relayed error)."""
    body = getattr(response, "body", None)  # a stream has none
    if response.status_code < 400 or not isinstance(body, bytes | memoryview):
        return ""
    try:
        error = json.loads(bytes(body)).get("error") or {}
        return str(error.get("code") or "")
    except (ValueError, AttributeError):
        return ""
