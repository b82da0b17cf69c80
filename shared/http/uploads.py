"""Model calls whose body is a multipart upload (audio transcriptions and translations, image
edits): the form's fields read, its files streamed through to one deployment within the upload
limit, its model named as that deployment knows it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import bad_request
from shared.gateway import Gateway
from shared.http.access import resolve_model
from shared.http.frame import serve
from shared.http.inbound import checked_model_name
from shared.http.multipart import (
    FormReader,
    FormWriter,
    Part,
    Spool,
    boundary_of,
    limited,
    too_large,
)
from shared.http.policy import admit, redact
from shared.registry.systems import Caller
from shared.routes import Operation, Route, Style
from shared.upstream.upstreams import Upstream
from shared.usage.account import Account
from shared.usage.audio import measured
from shared.usage.counts import Units

AUDIO_BYTES = 25 * 1024 * 1024  # OpenAI's and Azure's limit on an audio file
_AUDIO = frozenset({Operation.TRANSCRIPTIONS, Operation.TRANSLATIONS})

FileFilter = Callable[[Part, AsyncIterator[bytes]], AsyncIterator[bytes]]


@dataclass
class Upload:
    """A multipart body being read: its fields so far, and its files either still streaming
    (the reader is inside `current`) or spooled whole."""

    reader: FormReader
    fields: list[tuple[str, str]] = field(default_factory=list)
    current: Part | None = None
    spool: Spool | None = None

    def field(self, name: str) -> str | None:
        return next((value for key, value in self.fields if key == name), None)

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


async def read_upload(request: Request, limit: int, needed: tuple[str, ...] = ()) -> Upload:
    """The form's fields up to its first file; read on to the end (files spooled) only when a
    `needed` field has not come by then."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    boundary = boundary_of(request.headers.get("content-type"))
    upload = Upload(FormReader(limited(request.stream(), limit), boundary))
    while (part := await upload.reader.next_part()) is not None:
        if part.filename is None:
            value = (await upload.reader.read()).decode("utf-8", "replace")
            upload.fields.append((part.name, value))
        elif all(upload.field(name) is not None for name in needed):
            upload.current = part
            return upload
        else:
            upload.spool = upload.spool or Spool()
            await upload.spool.keep(part, upload.reader.data())
    return upload


async def read_rest(upload: Upload) -> None:
    """The fields after the file the reader is in (another file: refused)."""
    while (part := await upload.reader.next_part()) is not None:
        if part.filename is not None:
            raise bad_request("Upload one file per request.", "too_many_files", "file")
        value = (await upload.reader.read()).decode("utf-8", "replace")
        upload.fields.append((part.name, value))
    upload.current = None


def the_file(upload: Upload) -> tuple[Part, AsyncIterator[bytes]]:
    """The upload's file part and its bytes (as they arrive, or from the spool)."""
    if upload.current is not None:
        return upload.current, upload.reader.data()
    if upload.spool is not None and upload.spool.parts:
        part, offset, size = upload.spool.parts[0]
        return part, upload.spool.read(offset, size)
    raise bad_request(
        "The upload holds no file: send it as the 'file' part.", "missing_file", "file"
    )


async def encoded(
    upload: Upload, writer: FormWriter, overrides: dict[str, str], files: FileFilter | None = None
) -> AsyncIterator[bytes]:
    """The form again, under the writer's boundary: its fields (some overridden), then its
    files, from the spool or as they still arrive."""
    for name, value in upload.fields:
        yield writer.field(name, overrides.get(name, value))
    if upload.spool is not None:
        for kept, offset, size in upload.spool.parts:
            yield writer.file_head(kept)
            data = upload.spool.read(offset, size)
            async for piece in files(kept, data) if files else data:
                yield piece
            yield writer.file_end()
    part: Part | None = upload.current
    while part is not None:
        if part.filename is None:
            value = (await upload.reader.read()).decode("utf-8", "replace")
            yield writer.field(part.name, overrides.get(part.name, value))
        else:
            yield writer.file_head(part)
            data = upload.reader.data()
            async for piece in files(part, data) if files else data:
                yield piece
            yield writer.file_end()
        part = await upload.reader.next_part()
    yield writer.end()


async def media_upload(request: Request, route: Route) -> Response:
    """`audio/transcriptions`, `audio/translations` and `images/edits`, in any style."""
    style, operation = route.style, route.operation
    if style is None or operation is None:
        raise TypeError(f"route {route.name} is not a model call")

    async def work(gateway: Gateway, account: Account, caller: Caller) -> Response:
        limit = gateway.settings.max_upload_bytes
        limit = min(limit, AUDIO_BYTES) if operation in _AUDIO else limit
        needed = ("model",) if style is Style.OPENAI else ()
        upload = await read_upload(request, limit, needed)
        try:
            named = upload.field("model") if style is Style.OPENAI else _path_model(request, style)
            account.model = checked_model_name(named)
            model = resolve_model(gateway.config, caller, account.model, operation)
            prompt = {"prompt": upload.field("prompt") or ""}
            redact(caller, model, prompt)
            await admit(gateway, caller, model, {}, account)
            writer = FormWriter()

            def heard(seconds: float) -> None:
                account.units_heard = Units(audio_seconds=seconds)

            def measure(part: Part, data: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
                return measured(data, heard) if part.name == "file" else data

            def body_for(upstream: Upstream) -> AsyncIterator[bytes]:
                overrides = {"model": upstream.target, **prompt}
                return encoded(upload, writer, overrides, measure if operation in _AUDIO else None)

            return await gateway.dispatcher.upload(
                model, writer.content_type, body_for, account.request_id, account
            )
        finally:
            upload.close()

    return await serve(request, style.value, operation.value, work)


def _path_model(request: Request, style: Style) -> object:
    return request.path_params.get("model" if style is Style.GATEWAY else "deployment")
