"""A system's content policy on the request path: its prompt checked while the request is
admitted (one round trip, not two), refused in Azure OpenAI's content-filter shape when it
fires; its answer checked by the account's guard before it is delivered."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.gateway import Gateway
from shared.guardrails.answers import AnswerGuard
from shared.guardrails.checks import CHECKED
from shared.guardrails.verdict import Verdict, prompt_refusal
from shared.registry.systems import Caller
from shared.upstream.config import PublicModel
from shared.usage.account import Account

Screening = asyncio.Task[Verdict] | None


def screen_prompt(
    gateway: Gateway, caller: Caller, model: PublicModel, body: dict[str, Any], account: Account
) -> Screening:
    """Start checking the (redacted) prompt, if the system has a content policy; and arm the
    check of its answer."""
    policy = caller.system.content_policy
    if policy is None or model.operation not in CHECKED:
        return None
    if policy.checks_answers:
        account.guard = AnswerGuard(gateway.checks, policy, model.operation)
    return asyncio.ensure_future(gateway.checks.prompt(policy, model.operation, body))


async def screened(screening: Screening, account: Account) -> None:
    """Wait for the prompt's check; a prompt that fired is refused (400 content_filter)."""
    if screening is None:
        return
    verdict = await screening
    account.checked("prompt", verdict)
    if verdict.blocked:
        raise prompt_refusal(verdict)


def drop(screening: Screening) -> None:
    """The request ended before its check was needed."""
    if screening is not None and not screening.done():
        screening.cancel()
