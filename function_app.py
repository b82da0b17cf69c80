"""Azure Functions (Python v2) entry point: binds Tollgate's routes and timer to shared/.

Every HTTP function is async on the HTTP streaming extension's types, so responses
can stream. Routes are anonymous at the Functions level: callers authenticate with
gateway keys, which shared/ checks on every route but /healthz. The latency probe
runs on a timer (TOLLGATE_PROBE_SCHEDULE, NCRONTAB).
"""

import azure.functions as func
from azurefunctions.extensions.http.fastapi import Request, Response

from shared import routes
from shared.http import handlers
from shared.probe import run as probe
from shared.routes import Operation, Style
from shared.settings import ProbeSettings

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.function_name("gateway_chat_completions")
@app.route(route=routes.GATEWAY_CHAT, methods=["POST"])
async def gateway_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, Style.GATEWAY, Operation.CHAT)


@app.function_name("gateway_embeddings")
@app.route(route=routes.GATEWAY_EMBEDDINGS, methods=["POST"])
async def gateway_embeddings(req: Request) -> Response:
    return await handlers.completions(req, Style.GATEWAY, Operation.EMBEDDINGS)


@app.function_name("azure_chat_completions")
@app.route(route=routes.AZURE_CHAT, methods=["POST"])
async def azure_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, Style.AZURE, Operation.CHAT)


@app.function_name("azure_embeddings")
@app.route(route=routes.AZURE_EMBEDDINGS, methods=["POST"])
async def azure_embeddings(req: Request) -> Response:
    return await handlers.completions(req, Style.AZURE, Operation.EMBEDDINGS)


@app.function_name("azure_models")
@app.route(route=routes.AZURE_MODELS, methods=["GET"])
async def azure_models(req: Request) -> Response:
    return await handlers.list_models(req, Style.AZURE)


@app.function_name("openai_chat_completions")
@app.route(route=routes.OPENAI_CHAT, methods=["POST"])
async def openai_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, Style.OPENAI, Operation.CHAT)


@app.function_name("openai_embeddings")
@app.route(route=routes.OPENAI_EMBEDDINGS, methods=["POST"])
async def openai_embeddings(req: Request) -> Response:
    return await handlers.completions(req, Style.OPENAI, Operation.EMBEDDINGS)


@app.function_name("openai_models")
@app.route(route=routes.OPENAI_MODELS, methods=["GET"])
async def openai_models(req: Request) -> Response:
    return await handlers.list_models(req, Style.OPENAI)


@app.function_name("azure_v1_chat_completions")
@app.route(route=routes.AZURE_V1_CHAT, methods=["POST"])
async def azure_v1_chat_completions(req: Request) -> Response:
    return await handlers.completions(req, Style.OPENAI, Operation.CHAT)


@app.function_name("azure_v1_embeddings")
@app.route(route=routes.AZURE_V1_EMBEDDINGS, methods=["POST"])
async def azure_v1_embeddings(req: Request) -> Response:
    return await handlers.completions(req, Style.OPENAI, Operation.EMBEDDINGS)


@app.function_name("azure_v1_models")
@app.route(route=routes.AZURE_V1_MODELS, methods=["GET"])
async def azure_v1_models(req: Request) -> Response:
    return await handlers.list_models(req, Style.OPENAI)


@app.function_name("healthz")
@app.route(route=routes.HEALTH, methods=["GET"])
async def healthz(req: Request) -> Response:
    return await handlers.health(req)


@app.function_name("fallback")
@app.route(route=routes.FALLBACK, methods=list(routes.ALL_METHODS))
async def fallback(req: Request) -> Response:
    return await handlers.fallback(req)


@app.function_name("latency_probe")
@app.timer_trigger(
    schedule=ProbeSettings.from_env().schedule, arg_name="timer", run_on_startup=False
)
async def latency_probe(timer: func.TimerRequest) -> None:
    await probe.run_scheduled()
