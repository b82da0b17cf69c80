"""Azure AI Content Safety, reached with its SDK (async) as the managed identity, or with a key
from the secret store: text analysis and Prompt Shields, each bounded by the check timeout.
Any failure is `Unavailable`: the system's outage policy decides what it means."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from shared.guardrails.verdict import Finding

if TYPE_CHECKING:
    from azure.ai.contentsafety.aio import ContentSafetyClient

MAX_TEXT = 10_000  # characters per analysis, as the service takes them
SHIELD_API_VERSION = "2024-09-01"
_SDK_NAMES = {"hate": "Hate", "sexual": "Sexual", "violence": "Violence", "self_harm": "SelfHarm"}
_OURS = {sdk: ours for ours, sdk in _SDK_NAMES.items()}


class Unavailable(Exception):
    """Content Safety did not answer in time, or answered with an error."""


class ContentSafety:
    def __init__(
        self,
        endpoint: str,
        credential: Callable[[], Awaitable[Any]],
        timeout_seconds: float,
        ca_file: str | None = None,
    ) -> None:
        self._endpoint, self._credential = endpoint, credential
        self._timeout, self._ca_file = timeout_seconds, ca_file
        self._client: ContentSafetyClient | None = None
        self._signed_in: Any = None  # the credential, closed with the client
        self._lock = asyncio.Lock()

    async def categories(self, text: str, thresholds: dict[str, int]) -> tuple[Finding, ...]:
        """The categories at or above their thresholds, over the text in service-sized parts."""
        parts = [text[i : i + MAX_TEXT] for i in range(0, len(text), MAX_TEXT)] or [""]
        results = await self._bounded(
            asyncio.gather(*(self._analyze(part, list(thresholds)) for part in parts))
        )
        worst: dict[str, int] = {}
        for analysis in results:
            for category, severity in analysis.items():
                worst[category] = max(worst.get(category, 0), severity)
        return tuple(
            Finding(category, severity)
            for category, severity in worst.items()
            if category in thresholds and severity >= thresholds[category] and severity > 0
        )

    async def shields(self, prompt: str, documents: list[str]) -> tuple[Finding, ...]:
        """Prompt Shields: an attack in the user prompt (its last 10,000 characters, where a
        conversation's newest turn is) or in a document."""
        room = MAX_TEXT
        prompt = prompt[-room:]
        room -= len(prompt)
        kept = []
        for document in documents:
            if room <= 0:
                break
            kept.append(document[:room])
            room -= len(kept[-1])
        answer = await self._bounded(self._shield(prompt, kept))
        found = []
        if (answer.get("userPromptAnalysis") or {}).get("attackDetected") is True:
            found.append(Finding("jailbreak"))
        if any(d.get("attackDetected") is True for d in answer.get("documentsAnalysis") or []):
            found.append(Finding("indirect_attack"))
        return tuple(found)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        close = getattr(self._signed_in, "close", None)
        if close is not None:
            await close()

    async def _bounded(self, work: Awaitable[Any]) -> Any:
        from azure.core.exceptions import AzureError

        try:
            async with asyncio.timeout(self._timeout):
                return await work
        except (TimeoutError, AzureError, OSError, ValueError) as exc:
            raise Unavailable(type(exc).__name__) from None

    async def _analyze(self, text: str, categories: list[str]) -> dict[str, int]:
        from azure.ai.contentsafety.models import AnalyzeTextOptions

        client = await self._ready()
        options = AnalyzeTextOptions(text=text, categories=[_SDK_NAMES[c] for c in categories])
        result = await client.analyze_text(options)
        return {
            _OURS.get(str(item.category), str(item.category)): int(item.severity or 0)
            for item in result.categories_analysis or []
        }

    async def _shield(self, prompt: str, documents: list[str]) -> dict[str, Any]:
        from azure.core.rest import HttpRequest

        client = await self._ready()
        request = HttpRequest(
            "POST",
            f"/text:shieldPrompt?api-version={SHIELD_API_VERSION}",
            json={"userPrompt": prompt, "documents": documents},
        )
        response = await client.send_request(request)
        response.raise_for_status()
        answer = json.loads(await response.read())
        if not isinstance(answer, dict):
            raise ValueError("not an object")
        return answer

    async def _ready(self) -> ContentSafetyClient:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    from azure.ai.contentsafety.aio import ContentSafetyClient

                    # No retries: one check has one timeout, and the outage policy decides.
                    options: dict[str, Any] = {"retry_total": 0}
                    if self._ca_file:
                        options["transport"] = _transport_trusting(self._ca_file)
                    self._signed_in = await self._credential()
                    self._client = ContentSafetyClient(self._endpoint, self._signed_in, **options)
        return self._client


def _transport_trusting(ca_file: str) -> Any:
    """The SDK's aiohttp transport on a session that trusts `ca_file`, made once. Given as
    `connection_verify`, the SDK would build a new TLS context per call, and so open a new
    connection per check."""
    import ssl

    import aiohttp
    from azure.core.pipeline.transport import AioHttpTransport

    context = ssl.create_default_context(cafile=ca_file)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
    return AioHttpTransport(session=session, session_owner=True)
