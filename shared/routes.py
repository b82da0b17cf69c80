"""The gateway's public routes: one table of name, template, methods, style and operation.

Templates are Azure Functions route templates (no '/api' prefix). function_app.py registers
each route from this table; the fallback route uses it to tell an unknown path (404) from a
wrong method (405).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Style(StrEnum):
    """Which client convention a route follows; decides where the model name comes from."""

    GATEWAY = "gateway"  # the seed's: model in the path
    AZURE = "azure"  # AzureOpenAI SDK: deployment in the path
    OPENAI = "openai"  # OpenAI SDK (also on Azure's v1 paths): model in the body


class Operation(StrEnum):
    """What a route asks of a model; decides the upstream path and how usage is counted."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    RESPONSES = "responses"
    INPUT_TOKENS = "input_tokens"  # a Responses API input counted, by the model's deployments
    COMPLETIONS = "completions"  # the legacy text completions API
    IMAGES = "images"  # image generation
    IMAGE_EDITS = "image_edits"  # an image edited (multipart)
    TRANSCRIPTIONS = "transcriptions"  # speech to text (multipart)
    TRANSLATIONS = "translations"  # speech to English text (multipart)
    SPEECH = "speech"  # text to speech, answered as a binary stream


@dataclass(frozen=True)
class Route:
    name: str  # the function's name
    template: str
    methods: tuple[str, ...]
    style: Style | None = None  # None: a route of the gateway's own (health, fallback)
    operation: Operation | None = None  # None: no model call (a model list, health)


POST, GET = ("POST",), ("GET",)
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
CHAT, EMBEDDINGS, RESPONSES = Operation.CHAT, Operation.EMBEDDINGS, Operation.RESPONSES

GATEWAY_CHAT = Route(
    "gateway_chat_completions", "gateway/chat/completions/{model}", POST, Style.GATEWAY, CHAT
)
GATEWAY_EMBEDDINGS = Route(
    "gateway_embeddings", "gateway/embeddings/{model}", POST, Style.GATEWAY, EMBEDDINGS
)
AZURE_CHAT = Route(
    "azure_chat_completions",
    "openai/deployments/{deployment}/chat/completions",
    POST,
    Style.AZURE,
    CHAT,
)
AZURE_EMBEDDINGS = Route(
    "azure_embeddings", "openai/deployments/{deployment}/embeddings", POST, Style.AZURE, EMBEDDINGS
)
AZURE_MODELS = Route("azure_models", "openai/models", GET, Style.AZURE)
OPENAI_CHAT = Route("openai_chat_completions", "v1/chat/completions", POST, Style.OPENAI, CHAT)
OPENAI_EMBEDDINGS = Route("openai_embeddings", "v1/embeddings", POST, Style.OPENAI, EMBEDDINGS)
OPENAI_MODELS = Route("openai_models", "v1/models", GET, Style.OPENAI)
AZURE_V1_CHAT = Route(
    "azure_v1_chat_completions", "openai/v1/chat/completions", POST, Style.OPENAI, CHAT
)
AZURE_V1_EMBEDDINGS = Route(
    "azure_v1_embeddings", "openai/v1/embeddings", POST, Style.OPENAI, EMBEDDINGS
)
AZURE_V1_MODELS = Route("azure_v1_models", "openai/v1/models", GET, Style.OPENAI)
GATEWAY_RESPONSES = Route(
    "gateway_responses", "gateway/responses/{model}", POST, Style.GATEWAY, RESPONSES
)
OPENAI_RESPONSES = Route("openai_responses", "v1/responses", POST, Style.OPENAI, RESPONSES)
AZURE_V1_RESPONSES = Route(
    "azure_v1_responses", "openai/v1/responses", POST, Style.OPENAI, RESPONSES
)
# The AzureOpenAI SDK's route (with api-version): the deployment is the body's `model`.
AZURE_RESPONSES = Route("azure_responses", "openai/responses", POST, Style.OPENAI, RESPONSES)
# Some clients put the deployment in the path, as for chat: accepted, the path names the model.
AZURE_DEPLOYMENT_RESPONSES = Route(
    "azure_deployment_responses",
    "openai/deployments/{deployment}/responses",
    POST,
    Style.AZURE,
    RESPONSES,
)
# Stored responses, in the three client styles: retrieve and delete, cancel, input items.
STORED_RESPONSES = tuple(
    Route(f"{name}_{kind}", f"{prefix}/responses/{{response_id}}{suffix}", methods, style)
    for name, prefix, style in (
        ("openai", "v1", Style.OPENAI),
        ("azure_v1", "openai/v1", Style.OPENAI),
        ("azure", "openai", Style.AZURE),
    )
    for kind, suffix, methods in (
        ("response", "", ("GET", "DELETE")),
        ("response_cancel", "/cancel", POST),
        ("response_input_items", "/input_items", GET),
    )
)
# The legacy text completions API (`client.completions.create`), in the four styles.
LEGACY_COMPLETIONS = (
    Route(
        "gateway_completions",
        "gateway/completions/{model}",
        POST,
        Style.GATEWAY,
        Operation.COMPLETIONS,
    ),
    Route(
        "azure_completions",
        "openai/deployments/{deployment}/completions",
        POST,
        Style.AZURE,
        Operation.COMPLETIONS,
    ),
    Route("openai_completions", "v1/completions", POST, Style.OPENAI, Operation.COMPLETIONS),
    Route(
        "azure_v1_completions", "openai/v1/completions", POST, Style.OPENAI, Operation.COMPLETIONS
    ),
)
# Image generation (`client.images.generate`), in the four styles.
IMAGE_GENERATIONS = (
    Route(
        "gateway_images",
        "gateway/images/generations/{model}",
        POST,
        Style.GATEWAY,
        Operation.IMAGES,
    ),
    Route(
        "azure_images",
        "openai/deployments/{deployment}/images/generations",
        POST,
        Style.AZURE,
        Operation.IMAGES,
    ),
    Route("openai_images", "v1/images/generations", POST, Style.OPENAI, Operation.IMAGES),
    Route("azure_v1_images", "openai/v1/images/generations", POST, Style.OPENAI, Operation.IMAGES),
)
# Image edits and audio, multipart uploads but speech, in the four styles.
_MEDIA = (
    ("images_edits", "images/edits", Operation.IMAGE_EDITS),
    ("audio_transcriptions", "audio/transcriptions", Operation.TRANSCRIPTIONS),
    ("audio_translations", "audio/translations", Operation.TRANSLATIONS),
    ("audio_speech", "audio/speech", Operation.SPEECH),
)
MEDIA = tuple(
    Route(f"{name}_{kind}", template, POST, style, operation)
    for kind, path, operation in _MEDIA
    for name, template, style in (
        ("gateway", f"gateway/{path}/{{model}}", Style.GATEWAY),
        ("azure", f"openai/deployments/{{deployment}}/{path}", Style.AZURE),
        ("openai", f"v1/{path}", Style.OPENAI),
        ("azure_v1", f"openai/v1/{path}", Style.OPENAI),
    )
)
# Files and batches, OpenAI's, Azure v1's and Azure's (api-version) paths; no model in the path.
_OBJECT_PREFIXES = (
    ("openai", "v1", Style.OPENAI),
    ("azure_v1", "openai/v1", Style.OPENAI),
    ("azure", "openai", Style.AZURE),
)
FILES = tuple(
    Route(f"{name}_{kind}", f"{prefix}/files{suffix}", methods, style)
    for name, prefix, style in _OBJECT_PREFIXES
    for kind, suffix, methods in (
        ("files", "", ("GET", "POST")),
        ("file", "/{file_id}", ("GET", "DELETE")),
        ("file_content", "/{file_id}/content", GET),
    )
)
BATCHES = tuple(
    Route(f"{name}_{kind}", f"{prefix}/batches{suffix}", methods, style)
    for name, prefix, style in _OBJECT_PREFIXES
    for kind, suffix, methods in (
        ("batches", "", ("GET", "POST")),
        ("batch", "/{batch_id}", GET),
        ("batch_cancel", "/{batch_id}/cancel", POST),
    )
)
# Counting a Responses API input (`responses.input_tokens.count`); the model is in the body.
INPUT_TOKENS = tuple(
    Route(
        f"{name}_input_tokens",
        f"{prefix}/responses/input_tokens",
        POST,
        style,
        Operation.INPUT_TOKENS,
    )
    for name, prefix, style in (
        ("openai", "v1", Style.OPENAI),
        ("azure_v1", "openai/v1", Style.OPENAI),
        ("azure", "openai", Style.AZURE),
    )
)
HEALTH = Route("healthz", "healthz", GET)
READY = Route("readyz", "readyz", GET)
METRICS = Route("metrics", "metrics", GET)
STATUS = Route("status", "status", GET)  # the operators' status page
FALLBACK = Route("fallback", "{*path}", ALL_METHODS)

ROUTES: tuple[Route, ...] = (
    GATEWAY_CHAT,
    GATEWAY_EMBEDDINGS,
    AZURE_CHAT,
    AZURE_EMBEDDINGS,
    AZURE_MODELS,
    OPENAI_CHAT,
    OPENAI_EMBEDDINGS,
    OPENAI_MODELS,
    AZURE_V1_CHAT,
    AZURE_V1_EMBEDDINGS,
    AZURE_V1_MODELS,
    GATEWAY_RESPONSES,
    OPENAI_RESPONSES,
    AZURE_V1_RESPONSES,
    AZURE_RESPONSES,
    AZURE_DEPLOYMENT_RESPONSES,
    *LEGACY_COMPLETIONS,
    *IMAGE_GENERATIONS,
    *MEDIA,
    *INPUT_TOKENS,
    *FILES,
    *BATCHES,
    *STORED_RESPONSES,
    HEALTH,
    READY,
    METRICS,
    STATUS,
    FALLBACK,
)


def _pattern(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.compile(f"^/{regex}/?$")


_PATTERNS = [(_pattern(r.template), r.methods) for r in ROUTES if r is not FALLBACK]


def allowed_methods(path: str) -> tuple[str, ...] | None:
    """The methods a known route accepts at `path`, or None when no route matches."""
    for pattern, methods in _PATTERNS:
        if pattern.match(path):
            return methods
    return None
