"""The `/files` operations: upload (multipart, read streamed), list, retrieve, content and
delete, on `/v1`, `/openai/v1` and Azure's `/openai` (with api-version)."""

from __future__ import annotations

from aiohttp import web

from . import errors
from .files import add_file, check_purpose, delete_file, find_file, list_files
from .pipeline import admit, ok, reset_response, resets
from .state import Call, SimState
from .uploads import require_form
from .wire import dumps


async def files(call: Call, state: SimState) -> web.StreamResponse:
    request = call.request
    file_id = request.match_info.get("file_id")
    if request.method == "POST":
        return await _upload(call, state)
    await admit(call, state)
    if resets(call):
        return reset_response(call)
    state.settle_batches()
    if file_id is None:
        return ok(call, dumps(list_files(state.files, dict(request.query))).encode())
    if request.method == "DELETE":
        return ok(call, dumps(delete_file(state.files, file_id)).encode())
    stored = find_file(state.files, file_id)
    if request.match_info.get("action") == "content":
        return ok(call, stored.data, stored.content_type)
    return ok(call, dumps(stored.body()).encode())


async def _upload(call: Call, state: SimState) -> web.StreamResponse:
    form = require_form(call.form)
    parts = form.files("file")
    if len(parts) != 1:
        raise errors.bad_request("Missing required parameter: 'file'.", "file")
    (part,) = parts
    purpose = check_purpose(form.fields.get("purpose"), part.filename)
    await admit(call, state)
    if resets(call):
        return reset_response(call)
    stored = add_file(state.files, part.data, part.filename, purpose, part.sha256)
    call.record["file_id"] = stored.file_id
    return ok(call, dumps(stored.body()).encode())
