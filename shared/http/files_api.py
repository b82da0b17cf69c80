"""Files through the gateway, on the files resource: upload (streamed through; a batch input
file checked and rewritten first), list, retrieve, content and delete, each only on the
caller's own files."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import bad_request
from shared.gateway import Gateway
from shared.http.batch_files import checked_batch_file
from shared.http.frame import serve
from shared.http.multipart import FormWriter
from shared.http.owned import admit_request, files_upstream, json_object, own, own_list, style_of
from shared.http.uploads import encoded, read_rest, read_upload, the_file
from shared.registry.systems import Caller
from shared.routes import Route
from shared.upstream.upstreams import Upstream
from shared.usage.account import Account


async def files(request: Request, route: Route) -> Response:
    """`GET` lists the caller's files; `POST` uploads one."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        upstream = files_upstream(gateway)
        await admit_request(gateway, caller, account)
        if request.method == "GET":
            return await own_list(gateway, account, caller, request, "files")
        return await _upload(request, gateway, account, caller, upstream)

    return await serve(request, style_of(route), "files", work)


async def _upload(
    request: Request, gateway: Gateway, account: Account, caller: Caller, upstream: Upstream
) -> Response:
    upload = await read_upload(request, gateway.settings.max_upload_bytes, ("purpose",))
    try:
        purpose = upload.field("purpose")
        if not purpose:
            raise bad_request("'purpose' is required.", "missing_required_parameter", "purpose")
        entry: dict[str, Any] = {
            "system": caller.system.id,
            "upstream": upstream.name,
            "purpose": purpose,
        }
        if purpose == "batch":
            part, data = the_file(upload)
            checked = await checked_batch_file(gateway, caller, part, data)
            await read_rest(upload)
            upload.close()
            upload.spool = checked.spool  # the rewritten file goes up instead
            account.model = checked.model
            entry |= {
                "model": checked.model,
                "operation": checked.operation.value,
                "deployment": checked.deployment,
            }
        writer = FormWriter()
        url = upstream.objects_url("files")
        response = await gateway.dispatcher.on_resource(
            upstream,
            "POST",
            url,
            account.request_id,
            account,
            encoded(upload, writer, {}),
            writer.content_type,
        )
    finally:
        upload.close()
    file_id = json_object(response.body).get("id") if response.status_code == 200 else None
    if isinstance(file_id, str) and file_id:
        await gateway.objects.bind(file_id, entry)
    return response


async def _owned_file(
    request: Request, gateway: Gateway, account: Account, caller: Caller
) -> tuple[Upstream, str]:
    """The files resource and the path's file id, once it is known to be the caller's."""
    upstream = files_upstream(gateway)
    file_id = str(request.path_params.get("file_id", ""))
    await own(gateway, caller, file_id, "file")
    await admit_request(gateway, caller, account)
    return upstream, file_id


async def file(request: Request, route: Route) -> Response:
    """`GET` retrieves one of the caller's files; `DELETE` deletes it."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        upstream, file_id = await _owned_file(request, gateway, account, caller)
        url = upstream.objects_url(f"files/{file_id}")
        response = await gateway.dispatcher.on_resource(
            upstream, request.method, url, account.request_id, account
        )
        if request.method == "DELETE" and response.status_code == 200:
            await gateway.objects.unbind(file_id)
        return response

    return await serve(request, style_of(route), "files", work)


async def file_content(request: Request, route: Route) -> Response:
    """The bytes of one of the caller's files (a batch's output among them), relayed as they
    come."""

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        upstream, file_id = await _owned_file(request, gateway, account, caller)
        url = upstream.objects_url(f"files/{file_id}/content")
        return await gateway.dispatcher.on_resource(
            upstream, "GET", url, account.request_id, account, binary=True
        )

    return await serve(request, style_of(route), "files", work)
