"""The Responses API's calls beside create: a stored response (retrieve, resumed stream,
delete, cancel, input items), answered only for the system that created it by the deployment
that holds it, and counting an input's tokens."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import GatewayError, bad_request, not_found, server_error
from shared.gateway import Gateway
from shared.http.access import resolve_model
from shared.http.body import check_interpreted_fields
from shared.http.frame import serve
from shared.http.inbound import checked_model_name, read_json_body, with_client_query
from shared.http.policy import chained, redact
from shared.registry.systems import Caller
from shared.routes import Operation, Route, Style
from shared.usage.account import Account

RESPONSE_ID = re.compile(r"^resp_[A-Za-z0-9]{1,128}$")


async def stored_response(request: Request, route: Route) -> Response:
    """Retrieve, delete, cancel or list the input items of a stored response: only the system
    that created it may, on the deployment that holds it."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        response_id = str(request.path_params.get("response_id", ""))
        owner = await gateway.owners.owner(response_id) if RESPONSE_ID.match(response_id) else None
        if owner is None or owner.system != caller.system.id:  # never tell which
            message = f"No response found with id '{response_id[:64]}'."
            raise not_found(message, "response_not_found")
        account.response_id = response_id  # the record says which response was acted on
        upstream = gateway.config.upstreams.get(owner.deployment)
        if upstream is None:
            message = "The deployment that holds this response is no longer configured."
            raise GatewayError(409, message, code="response_unavailable")
        action = route.template.rsplit("/", 1)[-1] if not route.template.endswith("}") else ""
        url = with_client_query(upstream.stored_response_url(response_id, action), request)
        meter = gateway.background
        stream = request.method == "GET" and not action and _resumes(request)
        if stream:  # a resumed stream may bring a background response's end
            account.stream = True
            account.on_response_end(lambda answer: meter.seen_soon(response_id, answer))
        try:
            response = await gateway.dispatcher.stored(
                upstream, request.method, url, account.request_id, account, stream
            )
        except TimeoutError:
            message = "The upstream deployment did not answer in time."
            raise server_error(504, message, "upstream_timeout") from None
        shows_it = action == "cancel" or (request.method == "GET" and not action and not stream)
        if shows_it and response.status_code == 200:  # it may have ended: finish its metering
            meter.seen_soon(response_id, _json_object(response.body))
        return response

    style = route.style or Style.OPENAI
    return await serve(request, style.value, Operation.RESPONSES.value, work)


def _resumes(request: Request) -> bool:
    """`?stream=true` (with `starting_after=N`): the stream of a stored response, resumed."""
    stream = request.query_params.get("stream")
    if stream not in (None, "true", "false"):
        message = "'stream' must be true or false."
        raise bad_request(message, code="invalid_value", param="stream")
    after = request.query_params.get("starting_after")
    if after is not None and not re.fullmatch(r"-?\d{1,18}", after):
        message = "'starting_after' must be an event's sequence number."
        raise bad_request(message, code="invalid_value", param="starting_after")
    return stream == "true"


def _json_object(body: bytes | memoryview) -> dict[str, Any]:
    try:
        value = json.loads(bytes(body))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def input_tokens(request: Request, route: Route) -> Response:
    """`responses.input_tokens.count`: the model's deployment counts the input (after the
    system's redaction, so the count is of what the model would see). A request, not tokens:
    it counts against request limits only."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        body = await read_json_body(request, gateway.settings.max_body_bytes)
        check_interpreted_fields(body)
        account.model = checked_model_name(body.get("model"))
        model = resolve_model(gateway.config, caller, account.model, Operation.RESPONSES)
        model = await chained(gateway.owners, caller, model, body)
        redact(caller, model, body)
        scopes = caller.scopes(model.name)
        if scopes:
            reservation = await gateway.limiter.admit(caller.system.id, scopes, 0)
            account.reserved(gateway.limiter, reservation)
        counting = replace(model, operation=Operation.INPUT_TOKENS)
        return await gateway.dispatcher.forward(counting, body, account.request_id, account)

    style = route.style or Style.OPENAI
    return await serve(request, style.value, Operation.INPUT_TOKENS.value, work)
