"""The gateway's public routes, as Azure Functions route templates (no '/api' prefix).

function_app.py binds each to its handler; the fallback route uses the same table
to tell an unknown path (404) from a wrong method (405).
"""

from __future__ import annotations

import re
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


GATEWAY_CHAT = "gateway/chat/completions/{model}"
GATEWAY_EMBEDDINGS = "gateway/embeddings/{model}"
AZURE_CHAT = "openai/deployments/{deployment}/chat/completions"
AZURE_EMBEDDINGS = "openai/deployments/{deployment}/embeddings"
AZURE_MODELS = "openai/models"
OPENAI_CHAT = "v1/chat/completions"
OPENAI_EMBEDDINGS = "v1/embeddings"
OPENAI_MODELS = "v1/models"
AZURE_V1_CHAT = "openai/v1/chat/completions"
AZURE_V1_EMBEDDINGS = "openai/v1/embeddings"
AZURE_V1_MODELS = "openai/v1/models"
HEALTH = "healthz"
FALLBACK = "{*path}"

METHODS: dict[str, tuple[str, ...]] = {
    GATEWAY_CHAT: ("POST",),
    GATEWAY_EMBEDDINGS: ("POST",),
    AZURE_CHAT: ("POST",),
    AZURE_EMBEDDINGS: ("POST",),
    AZURE_MODELS: ("GET",),
    OPENAI_CHAT: ("POST",),
    OPENAI_EMBEDDINGS: ("POST",),
    OPENAI_MODELS: ("GET",),
    AZURE_V1_CHAT: ("POST",),
    AZURE_V1_EMBEDDINGS: ("POST",),
    AZURE_V1_MODELS: ("GET",),
    HEALTH: ("GET",),
}
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _pattern(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.compile(f"^/{regex}/?$")


_PATTERNS = [(_pattern(t), methods) for t, methods in METHODS.items()]


def allowed_methods(path: str) -> tuple[str, ...] | None:
    """The methods a known route accepts at `path`, or None when no route matches."""
    for pattern, methods in _PATTERNS:
        if pattern.match(path):
            return methods
    return None
