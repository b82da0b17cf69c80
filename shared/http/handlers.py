"""The gateway's HTTP handlers, on Starlette types (which the Functions HTTP extension uses)."""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shared.errors import GatewayError, bad_request, not_found, server_error
from shared.gateway import Gateway, get_gateway
from shared.http.access import allowed_models, authenticate, check_network, resolve_model
from shared.http.body import check_interpreted_fields
from shared.http.inbound import checked_model_name, read_json_body, request_id_of
from shared.limits.headers import rate_limit_headers
from shared.protection.client_ip import client_ip
from shared.registry.systems import Caller
from shared.routes import Operation, Route, Style, allowed_methods
from shared.upstream.config import PublicModel
from shared.upstream.owners import ResponseOwners
from shared.usage.account import Account, estimate
from shared.usage.content import ContentCapture

log = logging.getLogger("tollgate.access")
RESPONSE_ID = re.compile(r"^resp_[A-Za-z0-9]{1,128}$")


Work = Callable[[Gateway, Account, Caller], Awaitable[Response]]


async def completions(request: Request, route: Route) -> Response:
    """Chat completions, responses (create) and embeddings, in any of the route styles."""
    style, operation = route.style, route.operation
    if style is None or operation is None:
        raise TypeError(f"route {route.name} is not a model call")

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        body = await read_json_body(request, gateway.settings.max_body_bytes)
        check_interpreted_fields(body)
        account.model = checked_model_name(_model_name(request, style, body))
        account.stream = body.get("stream") is True
        model = resolve_model(gateway.config, caller, account.model, operation)
        if operation is Operation.RESPONSES:
            model = await chained(gateway.owners, caller, model, body)
            account.bind_responses(gateway.owners.remember_soon)
        redact(caller, model, body)
        if caller.system.content_logging is not None:
            account.content = ContentCapture(gateway.content, caller.system.content_logging, body)
        await admit(gateway, caller, model, body, account)
        response = await gateway.dispatcher.forward(model, body, account.request_id, account)
        response.headers.update(rate_limit_headers(account.reservation))
        return response

    return await _serve(request, style.value, operation.value, work)


async def stored_response(request: Request, route: Route) -> Response:
    """Retrieve, delete, cancel or list the input items of a stored response: only the system
    that created it may, on the deployment that holds it."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        response_id = str(request.path_params.get("response_id", ""))
        owner = await gateway.owners.owner(response_id) if RESPONSE_ID.match(response_id) else None
        if owner is None or owner.system != caller.system.id:  # never tell which
            message = f"No response found with id '{response_id[:64]}'."
            raise not_found(message, "response_not_found")
        upstream = gateway.config.upstreams.get(owner.deployment)
        if upstream is None:
            message = "The deployment that holds this response is no longer configured."
            raise GatewayError(409, message, code="response_unavailable")
        if request.query_params.get("stream") == "true":
            message = "Resuming a stream through the gateway is not supported yet."
            raise bad_request(message, code="unsupported_parameter", param="stream")
        action = route.template.rsplit("/", 1)[-1] if not route.template.endswith("}") else ""
        url = _with_query(upstream.stored_response_url(response_id, action), request)
        try:
            return await gateway.dispatcher.stored(
                upstream, request.method, url, account.request_id, account
            )
        except TimeoutError:
            message = "The upstream deployment did not answer in time."
            raise server_error(504, message, "upstream_timeout") from None

    style = route.style or Style.OPENAI
    return await _serve(request, style.value, Operation.RESPONSES.value, work)


def _with_query(url: str, request: Request) -> str:
    """The client's query (paging, include) on the upstream URL, never its api-version."""
    extra = [(k, v) for k, v in request.query_params.multi_items() if k != "api-version"]
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(extra)


async def list_models(request: Request, route: Route) -> Response:
    style = route.style
    if style is None:
        raise TypeError(f"route {route.name} names no style")

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        data = [
            {"id": m.name, "object": "model", "created": 0, "owned_by": "tollgate"}
            for m in allowed_models(gateway.config, caller)
        ]
        account.close_error(200, None)  # a success with no tokens
        return Response(
            json.dumps({"object": "list", "data": data}),
            media_type="application/json",
            headers={"x-request-id": account.request_id},
        )

    return await _serve(request, style.value, "models", work)


async def _serve(request: Request, route: str, operation: str, work: Work) -> Response:
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


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def fallback(request: Request) -> Response:
    methods = allowed_methods(request.url.path)
    if methods is None:
        error = not_found("Unknown route.", "not_found")
    else:
        allow = ", ".join(methods)
        message = f"Method {request.method} is not allowed here; use {allow}."
        error = GatewayError(405, message, code="method_not_allowed", headers={"allow": allow})
    return error.to_response({"x-request-id": request_id_of(request)})


async def admit(
    gateway: Gateway, caller: Caller, model: PublicModel, body: dict[str, Any], account: Account
) -> None:
    """Reserve the request against the caller's limits, when any apply."""
    default = gateway.settings.default_completion_tokens
    scopes = caller.scopes(model.name)
    if scopes:
        prompt, reserve = estimate(body, model.operation, model.tokenizer, default)
        account.estimate_prompt_with(lambda: prompt)
        reservation = await gateway.limiter.admit(caller.system.id, scopes, reserve)
        account.reserved(gateway.limiter, reservation)
    else:  # counted only if a stream breaks before the upstream reports usage
        account.estimate_prompt_with(
            lambda: estimate(body, model.operation, model.tokenizer, default)[0]
        )


async def chained(
    owners: ResponseOwners, caller: Caller, model: PublicModel, body: dict[str, Any]
) -> PublicModel:
    """A follow-up (`previous_response_id`) may name only the caller's own responses, and goes
    to the deployment that holds the one it names, whatever the pool's weights say."""
    previous = body.get("previous_response_id")
    if previous is None:
        return model
    if not isinstance(previous, str) or not previous:
        message = "'previous_response_id' must be the id of an earlier response."
        raise bad_request(message, code="invalid_value", param="previous_response_id")
    owner = await owners.owner(previous)
    if owner is None or owner.system != caller.system.id:  # never tell which
        message = f"Previous response with id '{previous}' not found."
        raise not_found(message, "previous_response_not_found")
    holder = tuple(m for m in model.pool if m.upstream.name == owner.deployment)
    if not holder:
        message = (
            f"The deployment that holds response '{previous}' no longer serves '{model.name}'; "
            "start a new conversation."
        )
        raise GatewayError(409, message, code="previous_response_unavailable")
    return replace(model, pool=holder)


async def _caller(request: Request, gateway: Gateway, account: Account) -> Caller:
    """Who is calling, from where they may: the gateway's network allow-list, the key, then
    the system's own allow-list."""
    check_network(gateway.networks, account.client_ip)
    caller = await authenticate(request, gateway.registry, gateway.entra)
    account.system, account.key_id = caller.system.id, caller.key_id
    check_network(caller.system.networks, account.client_ip, f"system '{caller.system.id}'")
    return caller


def redact(caller: Caller, model: PublicModel, body: dict[str, Any]) -> None:
    """The system's PII policy: mask in place, or refuse naming the kinds (never the values)."""
    redactor = caller.system.redactor
    if redactor is None:
        return
    if model.operation is Operation.EMBEDDINGS:
        findings = redactor.redact_embeddings(body)
    elif model.operation is Operation.RESPONSES:
        findings = redactor.redact_responses(body)
    else:
        findings = redactor.redact_chat(body)
    if findings and redactor.mode == "reject":
        kinds = ", ".join(findings.kinds)
        raise bad_request(
            f"The request contains personal data ({kinds}); remove it and retry.",
            code="pii_detected",
        )


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


def _model_name(request: Request, style: Style, body: dict[str, object]) -> object:
    if style is Style.GATEWAY:
        return request.path_params.get("model")
    if style is Style.AZURE:
        return request.path_params.get("deployment")
    return body.get("model")


def _log_access(account: Account, response: Response) -> None:
    fields = {
        "request_id": account.request_id,
        "route": account.route,
        "operation": account.operation,
        "system": account.system,
        "model": account.model,
        "status": response.status_code,
    }
    log.info("request", extra=fields)
