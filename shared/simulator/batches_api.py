"""The `/batches` operations: create, list, retrieve and cancel, on `/v1`, `/openai/v1` and
Azure's `/openai` (with api-version)."""

from __future__ import annotations

from aiohttp import web

from .batches import create_batch, find_batch, keep, list_batches
from .pipeline import admit, ok, reset_response, resets
from .state import Call, SimState
from .wire import dumps


async def batches(call: Call, state: SimState) -> web.StreamResponse:
    request = call.request
    batch_id = request.match_info.get("batch_id")
    config = state.config
    batch = None
    if request.method == "POST" and batch_id is None:
        batch = create_batch(
            state.files, call.body, call.azure, config.completion_tokens, config.batch_ms
        )
    await admit(call, state)
    if resets(call):
        return reset_response(call)
    if batch is not None:
        keep(state.batches, batch)
        state.batches_created += 1
        call.record["batch_id"] = batch.batch_id
        return ok(call, dumps(batch.body("validating")).encode())  # as OpenAI answers
    if batch_id is None:
        listed = list_batches(state.batches, state.files, dict(request.query))
        return ok(call, dumps(listed).encode())
    found = find_batch(state.batches, batch_id)
    cancel = request.match_info.get("action") == "cancel"
    answer = found.cancel(state.files) if cancel else found.view(state.files)
    return ok(call, dumps(answer).encode())
