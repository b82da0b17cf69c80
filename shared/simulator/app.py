"""The simulator application: route table, common response headers and in-process start-up."""

from __future__ import annotations

import uuid

from aiohttp import web

from .config import SimulatorConfig
from .control import add_control_routes
from .handlers import route
from .images import IMAGE_ROUTE, serve_image
from .state import REQUEST_ID, STATE, SimState

_AZURE_DEPLOYMENT = "/openai/deployments/{deployment}"
_FOUNDRY = "/models"  # Azure AI Foundry's model-inference API, the model named in the body
_AUDIO_OPERATIONS = ("transcriptions", "translations", "speech")


async def _common_headers(request: web.Request, response: web.StreamResponse) -> None:
    azure = request.path.startswith(("/openai/", _FOUNDRY + "/"))
    request_id = request.get(REQUEST_ID) or str(uuid.uuid4())
    response.headers.setdefault("x-request-id", request_id)
    if azure:
        response.headers.setdefault("apim-request-id", request_id)
        response.headers.setdefault("x-ms-region", "Simulated")


def _add_file_and_batch_routes(router: web.UrlDispatcher, prefix: str, azure: bool) -> None:
    files, batches = route("files", azure=azure), route("batches", azure=azure)
    router.add_post(prefix + "/files", files)
    router.add_get(prefix + "/files", files)
    router.add_get(prefix + "/files/{file_id}", files)
    router.add_delete(prefix + "/files/{file_id}", files)
    router.add_get(prefix + "/files/{file_id}/{action:content}", files)
    router.add_post(prefix + "/batches", batches)
    router.add_get(prefix + "/batches", batches)
    router.add_get(prefix + "/batches/{batch_id}", batches)
    router.add_post(prefix + "/batches/{batch_id}/{action:cancel}", batches)


def create_app(config: SimulatorConfig) -> web.Application:
    """The simulator app; ``config`` stays live (``/_sim/config`` edits this same object)."""
    app = web.Application()
    app[STATE] = SimState(config)
    app.on_response_prepare.append(_common_headers)
    router = app.router
    for prefix in ("/v1", "/openai/v1"):  # OpenAI, and Azure v1 (no api-version)
        router.add_post(prefix + "/chat/completions", route("chat", azure=False))
        router.add_post(prefix + "/completions", route("completions", azure=False))
        router.add_post(prefix + "/embeddings", route("embeddings", azure=False))
        router.add_post(prefix + "/images/generations", route("images", azure=False))
        router.add_post(prefix + "/images/edits", route("image_edits", azure=False))
        for operation in _AUDIO_OPERATIONS:
            router.add_post(f"{prefix}/audio/{operation}", route(operation, azure=False))
    router.add_get("/v1/models", route("models", azure=False))
    router.add_post(f"{_AZURE_DEPLOYMENT}/chat/completions", route("chat", azure=True))
    router.add_post(f"{_AZURE_DEPLOYMENT}/completions", route("completions", azure=True))
    router.add_post(f"{_AZURE_DEPLOYMENT}/embeddings", route("embeddings", azure=True))
    router.add_post(f"{_AZURE_DEPLOYMENT}/images/generations", route("images", azure=True))
    router.add_post(f"{_AZURE_DEPLOYMENT}/images/edits", route("image_edits", azure=True))
    for operation in _AUDIO_OPERATIONS:
        router.add_post(f"{_AZURE_DEPLOYMENT}/audio/{operation}", route(operation, azure=True))
    router.add_get("/openai/models", route("models", azure=True))
    router.add_post(_FOUNDRY + "/chat/completions", route("chat", azure=False, foundry=True))
    router.add_post(_FOUNDRY + "/embeddings", route("embeddings", azure=False, foundry=True))
    router.add_post("/v1/responses", route("responses", azure=False))
    router.add_post("/openai/v1/responses", route("responses", azure=False))  # Azure v1
    router.add_post("/openai/responses", route("responses", azure=True))  # with api-version
    for prefix, azure in (("/v1", False), ("/openai/v1", False), ("/openai", True)):
        router.add_post(prefix + "/responses/input_tokens", route("input_tokens", azure=azure))
        one = prefix + "/responses/{response_id}"
        router.add_get(one, route("stored", azure=azure))
        router.add_delete(one, route("stored", azure=azure))
        router.add_post(one + "/{action:cancel}", route("stored", azure=azure))
        router.add_get(one + "/{action:input_items}", route("stored", azure=azure))
        _add_file_and_batch_routes(router, prefix, azure)
    add_control_routes(app)
    router.add_get(IMAGE_ROUTE, serve_image)  # an image answer's `url`
    # Registered last so that they only catch what nothing above matched.
    router.add_route("*", "/v1/{tail:.*}", route("unknown", azure=False))
    router.add_route("*", "/openai/{tail:.*}", route("unknown", azure=True))
    router.add_route("*", _FOUNDRY + "/{tail:.*}", route("unknown", azure=False, foundry=True))
    return app


async def start_simulator(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, str]:
    """Start serving in the running loop; stop with ``await runner.cleanup()``."""
    runner = web.AppRunner(
        create_app(config), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, f"http://{host}:{site.port}"
