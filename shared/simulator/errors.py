"""OpenAI- and Azure-shaped error responses."""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    """An error answer; the pipeline renders it as JSON with ``status`` and ``headers``."""

    def __init__(
        self,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.content_type = content_type

    def encode(self) -> bytes:
        if isinstance(self.body, str) and self.content_type != "application/json":
            return self.body.encode()
        return json.dumps(self.body).encode()


def echoed(status: int, kind: str, headers: dict[str, str]) -> ApiError:
    """An error page quoting the request's headers (and one header echoing its credential)."""
    lines = [f"{name}: {value}" for name, value in headers.items()]
    credential = headers.get("api-key") or headers.get("authorization") or ""
    echo = {"x-echoed-credential": credential}
    if kind == "json":
        message = f"Upstream proxy error; request headers were: {'; '.join(lines)}"
        return ApiError(status, openai_body(message, "server_error", None), echo)
    page = "<html><body><h1>Bad Gateway</h1><pre>" + "\n".join(lines) + "</pre></body></html>"
    return ApiError(status, page, echo, content_type="text/html")


def openai_body(message: str, type_: str | None, code: str | None, param: str | None = None) -> Any:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def azure_body(code: str, message: str) -> Any:
    return {"error": {"code": code, "message": message}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    # Azure passes the model's validation errors through in the OpenAI shape.
    return ApiError(400, openai_body(message, "invalid_request_error", code, param))


_OPENAI_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API key from "
    "https://platform.openai.com/account/api-keys."
)
_OPENAI_BAD_KEY = (
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)
_AZURE_BAD_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your "
    "resource."
)


def unauthorized(azure: bool, key_present: bool) -> ApiError:
    if azure:
        return ApiError(401, azure_body("401", _AZURE_BAD_KEY))
    if not key_present:
        return ApiError(401, openai_body(_OPENAI_NO_KEY, "invalid_request_error", None))
    return ApiError(401, openai_body(_OPENAI_BAD_KEY, "invalid_request_error", "invalid_api_key"))


def model_not_found(azure: bool, model: str) -> ApiError:
    if azure:
        message = (
            "The API deployment for this resource does not exist. If you created the deployment "
            "within the last 5 minutes, please wait a moment and try again."
        )
        return ApiError(404, azure_body("DeploymentNotFound", message))
    message = f"The model `{model}` does not exist or you do not have access to it."
    return ApiError(404, openai_body(message, "invalid_request_error", "model_not_found"))


# Azure's names for the operations in its OperationNotSupported message.
_AZURE_OPERATION_NAMES = {
    "chat": "chatCompletion",
    "completions": "completion",
    "images": "imageGeneration",
    "image_edits": "imageEdit",
    "transcriptions": "audioTranscription",
    "translations": "audioTranslation",
    "speech": "audioSpeech",
}


def wrong_operation(azure: bool, model: str, operation: str) -> ApiError:
    if azure:
        name = _AZURE_OPERATION_NAMES.get(operation, operation)
        message = f"The {name} operation does not work with the specified model, {model}. "
        message += "Please choose different model and try again."
        return ApiError(400, azure_body("OperationNotSupported", message))
    message = f"This model ({model}) is not supported by the {operation} endpoint."
    return ApiError(400, openai_body(message, "invalid_request_error", "model_not_supported"))


def foundry_body(code: str, message: str) -> Any:
    """Azure AI Foundry's model-inference errors repeat the message as `details`."""
    return {"error": {"code": code, "message": message, "details": message}}


def unknown_model(model: str) -> ApiError:
    return ApiError(404, foundry_body("unknown_model", f"Unknown model: {model}"))


def no_model_name() -> ApiError:
    message = (
        "No model specified in request. Please provide a model name in the request body or as "
        "a x-ms-model-mesh-model-name header."
    )
    return ApiError(400, foundry_body("no_model_name", message))


def resource_not_found(azure: bool, method: str, path: str) -> ApiError:
    if azure:
        return ApiError(404, azure_body("404", "Resource not found"))
    message = f"Invalid URL ({method} {path})"
    return ApiError(404, openai_body(message, "invalid_request_error", None))


def unsupported_api_version() -> ApiError:
    return ApiError(400, azure_body("BadRequest", "API version not supported"))


_AZURE_OPERATIONS = {
    "chat": "ChatCompletions_Create",
    "completions": "Completions_Create",
    "embeddings": "Embeddings_Create",
    "images": "ImageGenerations_Create",
    "image_edits": "ImageEdits_Create",
    "transcriptions": "Transcriptions_Create",
    "translations": "Translations_Create",
    "speech": "Speech_Create",
    "files": "Files",
    "batches": "Batch",
}


def injected(
    azure: bool,
    status: int,
    model: str | None,
    operation: str,
    api_version: str | None,
    retry_seconds: float | None,
) -> Any:
    """The default body of a fault with ``status``."""
    wait = "" if retry_seconds is None else f"{retry_seconds:g}"
    if azure:
        return _azure_injected(status, operation, api_version, wait)
    if status == 429:
        message = (
            f"Rate limit reached for {model} in organization org-simulated on requests per min "
            f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {wait or '1'}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
        return openai_body(message, "requests", "rate_limit_exceeded")
    if status >= 500:
        message = "The server had an error while processing your request. Sorry about that!"
        return openai_body(message, "server_error", None)
    return openai_body(f"Simulated error {status}.", "invalid_request_error", None)


def _azure_injected(status: int, operation: str, api_version: str | None, wait: str) -> Any:
    if status == 429:
        name = _AZURE_OPERATIONS.get(operation, "Models_List")
        message = (
            f"Requests to the {name} Operation under Azure OpenAI API version {api_version} "
            "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry "
            f"after {wait or '1'} seconds. Please go here: https://aka.ms/oai/quotaincrease if "
            "you would like to further increase the default rate limit."
        )
        return azure_body("429", message)
    if status == 500:
        message = "Backend returned unexpected response. Please contact Microsoft for help."
        return azure_body("InternalServerError", message)
    return azure_body(str(status), f"Simulated error {status}.")
