"""Azure Functions (Python v2) entry point: binds Tollgate's routes and timer to shared/.

Every HTTP function is async on the HTTP streaming extension's types, so responses
can stream. Each takes its name, route template and methods from the route table
(shared/routes.py). Routes are anonymous at the Functions level: callers authenticate
with gateway keys, which shared/ checks on every route but /healthz. The latency probe
runs on a timer (TOLLGATE_PROBE_SCHEDULE, NCRONTAB).
"""

from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from shared import routes
from shared.http import (
    batches_api,
    files_api,
    handlers,
    metrics_page,
    readiness,
    responses_api,
    status,
    uploads,
)
from shared.probe import run as probe
from shared.settings import ProbeSettings

Handler = Callable[[Request, routes.Route], Awaitable[Response]]

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def http_function(route: routes.Route) -> Callable[[Any], Any]:
    """Register the decorated function as `route`: its name, template and methods."""

    def register(function: Any) -> Any:
        bound = app.route(route=route.template, methods=list(route.methods))(function)
        return app.function_name(route.name)(bound)

    return register


@http_function(routes.GATEWAY_CHAT)
async def gateway_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, routes.GATEWAY_CHAT)


@http_function(routes.GATEWAY_EMBEDDINGS)
async def gateway_embeddings(req: Request) -> Response:
    return await handlers.completions(req, routes.GATEWAY_EMBEDDINGS)


@http_function(routes.AZURE_CHAT)
async def azure_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, routes.AZURE_CHAT)


@http_function(routes.AZURE_EMBEDDINGS)
async def azure_embeddings(req: Request) -> Response:
    return await handlers.completions(req, routes.AZURE_EMBEDDINGS)


@http_function(routes.AZURE_MODELS)
async def azure_models(req: Request) -> Response:
    return await handlers.list_models(req, routes.AZURE_MODELS)


@http_function(routes.OPENAI_CHAT)
async def openai_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, routes.OPENAI_CHAT)


@http_function(routes.OPENAI_EMBEDDINGS)
async def openai_embeddings(req: Request) -> Response:
    return await handlers.completions(req, routes.OPENAI_EMBEDDINGS)


@http_function(routes.OPENAI_MODELS)
async def openai_models(req: Request) -> Response:
    return await handlers.list_models(req, routes.OPENAI_MODELS)


@http_function(routes.AZURE_V1_CHAT)
async def azure_v1_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, routes.AZURE_V1_CHAT)


@http_function(routes.AZURE_V1_EMBEDDINGS)
async def azure_v1_embeddings(req: Request) -> Response:
    return await handlers.completions(req, routes.AZURE_V1_EMBEDDINGS)


@http_function(routes.AZURE_V1_MODELS)
async def azure_v1_models(req: Request) -> Response:
    return await handlers.list_models(req, routes.AZURE_V1_MODELS)


@http_function(routes.GATEWAY_RESPONSES)
async def gateway_responses(req: Request) -> Response:
    return await handlers.completions(req, routes.GATEWAY_RESPONSES)


@http_function(routes.OPENAI_RESPONSES)
async def openai_responses(req: Request) -> Response:
    return await handlers.completions(req, routes.OPENAI_RESPONSES)


@http_function(routes.AZURE_V1_RESPONSES)
async def azure_v1_responses(req: Request) -> Response:
    return await handlers.completions(req, routes.AZURE_V1_RESPONSES)


@http_function(routes.AZURE_RESPONSES)
async def azure_responses(req: Request) -> Response:
    return await handlers.completions(req, routes.AZURE_RESPONSES)


@http_function(routes.AZURE_DEPLOYMENT_RESPONSES)
async def azure_deployment_responses(req: Request) -> Response:
    return await handlers.completions(req, routes.AZURE_DEPLOYMENT_RESPONSES)


def _bound(handler: Handler, route: routes.Route) -> Callable[[Request], Any]:
    """A function for one of a family of routes sharing a handler, named for its route."""

    async def function(req: Request) -> Response:
        return await handler(req, route)

    function.__name__ = route.name
    return function


for _route in routes.LEGACY_COMPLETIONS:  # the seed's, Azure's, OpenAI's and Azure v1's style
    http_function(_route)(_bound(handlers.completions, _route))
for _route in routes.IMAGE_GENERATIONS:
    http_function(_route)(_bound(handlers.completions, _route))
for _route in routes.MEDIA:  # speech has a JSON body; transcriptions, translations and edits upload
    media = (
        handlers.completions
        if _route.operation is routes.Operation.SPEECH
        else uploads.media_upload
    )
    http_function(_route)(_bound(media, _route))
_OBJECTS = {
    "files": files_api.files,
    "file": files_api.file,
    "file_content": files_api.file_content,
    "batches": batches_api.batches,
    "batch": batches_api.batch,
    "batch_cancel": batches_api.batch,
}
for _route in (*routes.FILES, *routes.BATCHES):  # OpenAI, Azure v1 and Azure paths: 18 functions
    _kind = _route.name.removeprefix("azure_v1_").removeprefix("openai_").removeprefix("azure_")
    http_function(_route)(_bound(_OBJECTS[_kind], _route))
for _route in routes.STORED_RESPONSES:  # retrieve, delete, cancel, input items: 9 functions
    http_function(_route)(_bound(responses_api.stored_response, _route))
for _route in routes.INPUT_TOKENS:  # OpenAI, Azure v1 and Azure preview paths
    http_function(_route)(_bound(responses_api.input_tokens, _route))


@http_function(routes.HEALTH)
async def healthz(req: Request) -> Response:
    return await handlers.health(req)


@http_function(routes.READY)
async def readyz(req: Request) -> Response:
    return await readiness.readiness(req)


@http_function(routes.METRICS)
async def metrics(req: Request) -> Response:
    return await metrics_page.prometheus_metrics(req)


@http_function(routes.STATUS)
async def status_page(req: Request) -> Response:
    return await status.status_page(req)


@http_function(routes.FALLBACK)
async def fallback(req: Request) -> Response:
    return await handlers.fallback(req)


@app.function_name("latency_probe")
@app.timer_trigger(
    schedule=ProbeSettings.from_env().schedule, arg_name="timer", run_on_startup=False
)
async def latency_probe(timer: func.TimerRequest) -> None:
    await probe.run_scheduled()
