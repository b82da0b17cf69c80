"""A policy applied: a prompt before the upstream call (the local checks, the harm categories
and Prompt Shields at once), an answer's text before it is delivered. When a check needs
Content Safety and it cannot answer, the policy's outage rule decides: open admits (logged
loudly, counted), closed refuses with 503."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from shared.guardrails.content_safety import ContentSafety, Unavailable
from shared.guardrails.local import local_findings
from shared.guardrails.policy import ContentPolicy
from shared.guardrails.texts import prompt_texts
from shared.guardrails.verdict import Finding, Verdict, unavailable
from shared.routes import Operation

log = logging.getLogger("tollgate.guardrails")
_LOG_EVERY_SECONDS = 10.0
CHECKED = frozenset({Operation.CHAT, Operation.RESPONSES, Operation.COMPLETIONS, Operation.IMAGES})


class ContentChecks:
    def __init__(self, service: ContentSafety | None) -> None:
        self._service = service
        self._last_log = 0.0

    async def prompt(
        self, policy: ContentPolicy, operation: Operation, body: dict[str, Any]
    ) -> Verdict:
        prompt, documents = prompt_texts(operation, body)
        whole = "\n".join([prompt, *documents])
        work: list[Any] = []
        checks = ["local"]
        if policy.prompt:
            checks.append("content_safety")
            work.append(self._categories(whole, policy.prompt))
        if policy.prompt_shields:
            checks.append("prompt_shields")
            work.append(self._shields(prompt, documents))
        found = list(local_findings(policy, whole))
        return await self._verdict(policy, tuple(checks), found, work)

    async def answer(self, policy: ContentPolicy, text: str) -> Verdict:
        found = list(local_findings(policy, text))
        work = [self._categories(text, policy.answer)] if policy.answer else []
        checks = ("local", "content_safety") if work else ("local",)
        return await self._verdict(policy, checks, found, work)

    async def aclose(self) -> None:
        if self._service is not None:
            await self._service.aclose()

    async def _verdict(
        self, policy: ContentPolicy, checks: tuple[str, ...], found: list[Finding], work: list[Any]
    ) -> Verdict:
        if not work:  # local checks only: nothing to wait for
            return Verdict(checks, tuple(found))
        results = await asyncio.gather(*work, return_exceptions=True)
        down = False
        for result in results:
            if isinstance(result, Unavailable):
                down = True
            elif isinstance(result, BaseException):
                raise result
            else:
                found += result
        if down and not found:
            self._log_outage(policy)
            if policy.outage == "closed":
                raise unavailable()
        return Verdict(checks, tuple(found), unavailable=down)

    async def _categories(self, text: str, thresholds: dict[str, int]) -> tuple[Finding, ...]:
        if self._service is None:
            raise Unavailable("TOLLGATE_CONTENT_SAFETY_ENDPOINT is not set")
        return await self._service.categories(text, thresholds)

    async def _shields(self, prompt: str, documents: list[str]) -> tuple[Finding, ...]:
        if self._service is None:
            raise Unavailable("TOLLGATE_CONTENT_SAFETY_ENDPOINT is not set")
        return await self._service.shields(prompt, documents)

    def _log_outage(self, policy: ContentPolicy) -> None:
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_SECONDS:
            self._last_log = now
            what = "admitting unchecked" if policy.outage == "open" else "refusing (503)"
            log.error("CONTENT SAFETY UNAVAILABLE: %s requests of systems that need it", what)
