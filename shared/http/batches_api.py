"""Batches through the gateway, on the files resource: create (only from the caller's own batch
file, its model checked again against what the system may use now), list, retrieve and cancel,
each only on the caller's own batches. Every sighting of a batch binds its output files to the
caller and tells the batch meter, which records the batch when it ends."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import GatewayError, bad_request
from shared.gateway import Gateway
from shared.http.access import resolve_model
from shared.http.batch_files import ENDPOINTS
from shared.http.frame import serve
from shared.http.inbound import read_json_body
from shared.http.owned import admit_request, files_upstream, json_object, own, own_list, style_of
from shared.registry.systems import Caller
from shared.routes import Operation, Route
from shared.usage.account import Account

_OUTPUTS = ("output_file_id", "error_file_id")


async def batches(request: Request, route: Route) -> Response:
    """`GET` lists the caller's batches; `POST` creates one."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        if request.method == "GET":
            files_upstream(gateway)
            await admit_request(gateway, caller, account)

            async def seen(item: dict[str, Any], entry: dict[str, Any]) -> None:
                await _seen(gateway, str(item.get("id")), entry, item)

            return await own_list(gateway, account, caller, request, "batches", seen)
        return await _create(request, gateway, account, caller, style_of(route))

    return await serve(request, style_of(route), "batches", work)


async def _create(
    request: Request, gateway: Gateway, account: Account, caller: Caller, style: str
) -> Response:
    upstream = files_upstream(gateway)
    body = await read_json_body(request, gateway.settings.max_body_bytes)
    file_id = body.get("input_file_id")
    if not isinstance(file_id, str) or not file_id:
        message = "'input_file_id' is required."
        raise bad_request(message, "missing_required_parameter", "input_file_id")
    entry = await own(gateway, caller, file_id, "file")
    if entry.get("purpose") != "batch" or "model" not in entry:
        message = f"File '{file_id}' was not uploaded with purpose 'batch'."
        raise bad_request(message, "invalid_input_file", "input_file_id")
    operation = Operation(entry["operation"])
    if ENDPOINTS.get(str(body.get("endpoint"))) is not operation:
        message = f"'endpoint' does not match the file's requests ({operation.value})."
        raise bad_request(message, "invalid_value", "endpoint")
    account.model = entry["model"]
    try:  # what the system may use may have changed since the upload
        model = resolve_model(gateway.config, caller, entry["model"], operation)
    except GatewayError as exc:
        message = f"Line 1 of the batch file: {exc.message}"
        raise GatewayError(exc.status, message, code=exc.code, param="input_file_id") from None
    if model.batch is None or model.batch.name != entry["deployment"]:
        message = "The batch deployment of this file's model has changed; upload the file again."
        raise GatewayError(409, message, code="batch_deployment_changed")
    await admit_request(gateway, caller, account, model.name)
    data = json.dumps(body, ensure_ascii=False).encode()
    url = upstream.objects_url("batches")
    response = await gateway.dispatcher.on_resource(
        upstream, "POST", url, account.request_id, account, data
    )
    batch = json_object(response.body) if response.status_code == 200 else {}
    batch_id = batch.get("id")
    if isinstance(batch_id, str) and batch_id:
        held = {
            "system": caller.system.id,
            "upstream": upstream.name,
            "key_id": caller.key_id,
            "model": model.name,
            "deployment": model.batch.name,
            "request_id": account.request_id,
            "route": style,
            "time": account.started_at,
            "client_ip": account.client_ip,
        }
        await gateway.objects.bind(batch_id, held)
        gateway.batches.watch_soon(batch_id, held)
    return response


async def batch(request: Request, route: Route) -> Response:
    """`GET` one of the caller's batches, or `POST .../cancel` it."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        upstream = files_upstream(gateway)
        batch_id = str(request.path_params.get("batch_id", ""))
        entry = await own(gateway, caller, batch_id, "batch")
        await admit_request(gateway, caller, account)
        account.model = entry.get("model", "-")
        cancel = request.method == "POST"
        url = upstream.objects_url(f"batches/{batch_id}" + ("/cancel" if cancel else ""))
        response = await gateway.dispatcher.on_resource(
            upstream, request.method, url, account.request_id, account
        )
        if response.status_code == 200:
            await _seen(gateway, batch_id, entry, json_object(response.body))
        return response

    return await serve(request, style_of(route), "batches", work)


async def _seen(
    gateway: Gateway, batch_id: str, entry: dict[str, Any], answer: dict[str, Any]
) -> None:
    """The batch's output files become its system's (before the client hears of them), and
    the meter hears how it stands."""
    for field in _OUTPUTS:
        file_id = answer.get(field)
        if isinstance(file_id, str) and file_id:
            output = {
                "system": entry["system"],
                "upstream": entry["upstream"],
                "purpose": "batch_output",
            }
            await gateway.objects.bind(file_id, output)
    gateway.batches.seen_soon(batch_id, entry, answer)
