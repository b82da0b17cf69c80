"""Image edits (`/images/edits`, multipart): one or several `image` parts (`image` or
`image[]`), an optional `mask`, and the fields of a generation; answered as generations are."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import errors
from .images import images_body, parse_request
from .pipeline import admit, generate, ok, reset_response, resets
from .state import Call, SimState
from .uploads import require_form

_FIELDS = ("prompt", "size", "quality", "response_format", "user", "background", "output_format")


def _body(fields: dict[str, str]) -> dict[str, Any]:
    """The form's text fields as a generation's JSON body (`n` a number when it is one)."""
    body: dict[str, Any] = {name: fields[name] for name in _FIELDS if name in fields}
    n = fields.get("n")
    if n is not None:
        body["n"] = int(n) if n.isdigit() else n
    return body


async def edit_images(call: Call, state: SimState) -> web.StreamResponse:
    assert call.model is not None
    form = require_form(call.form)
    if not form.files("image", "image[]"):
        raise errors.bad_request("Missing required parameter: 'image'.", "image")
    if len(form.files("mask")) > 1:
        raise errors.bad_request("Only one 'mask' may be given.", "mask")
    request = parse_request(_body(form.fields), call.model)
    await admit(call, state)
    await generate(state.config, 0)
    if resets(call):
        return reset_response(call)
    return ok(call, images_body(request, call.model, str(call.request.url.origin())))
