"""What every model call passes before its upstream: the system's PII policy (redact), its limits
(admit), and, for a follow-up response, its owner and deployment (chained)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from shared.errors import GatewayError, bad_request, not_found
from shared.gateway import Gateway
from shared.limits.plan import cost_units
from shared.registry.systems import Caller
from shared.routes import Operation
from shared.upstream.config import PublicModel
from shared.upstream.owners import ResponseOwners
from shared.usage.account import Account, estimate
from shared.usage.counts import NO_UNITS, Tokens, Units


def redact(caller: Caller, model: PublicModel, body: dict[str, Any]) -> None:
    """The system's PII policy: mask in place, or refuse naming the kinds (never the values)."""
    redactor = caller.system.redactor
    if redactor is None:
        return
    if model.operation is Operation.EMBEDDINGS or model.operation is Operation.SPEECH:
        findings = redactor.redact_embeddings(body)  # the text in `input`
    elif model.operation in _PROMPTED:
        findings = redactor.redact_embeddings(body, "prompt")
    elif model.operation is Operation.RESPONSES:
        findings = redactor.redact_responses(body)
    else:
        findings = redactor.redact_chat(body)
    if findings and redactor.mode == "reject":
        kinds = ", ".join(findings.kinds)
        raise bad_request(
            f"The request contains personal data ({kinds}); remove it and retry.",
            code="pii_detected",
        )


_PROMPTED = frozenset(  # the text is in `prompt` (a form field for uploads)
    {
        Operation.COMPLETIONS,
        Operation.IMAGES,
        Operation.IMAGE_EDITS,
        Operation.TRANSCRIPTIONS,
        Operation.TRANSLATIONS,
    }
)


async def admit(
    gateway: Gateway, caller: Caller, model: PublicModel, body: dict[str, Any], account: Account
) -> None:
    """Reserve the request against the caller's limits, when any apply."""
    default = gateway.settings.default_completion_tokens
    scopes = caller.scopes(model.name)
    if scopes:
        prompt, reserve = estimate(body, model.operation, model.tokenizer, default)
        account.estimate_prompt_with(lambda: prompt)
        budgeted = any(
            s.limits.budget_per_day is not None or s.limits.budget_per_month is not None
            for s in scopes
        )
        cost = worst_cost(model, body, prompt, reserve) if budgeted else 0
        reservation = await gateway.limiter.admit(caller.system.id, scopes, reserve, cost)
        account.reserved(gateway.limiter, reservation)
    else:  # counted only if a stream breaks before the upstream reports usage
        account.estimate_prompt_with(
            lambda: estimate(body, model.operation, model.tokenizer, default)[0]
        )


def worst_cost(model: PublicModel, body: dict[str, Any], prompt: int, reserve: int) -> int:
    """The most the call may cost, in cost units: the prompt at the prompt price, the rest of
    the reservation at the completion price, and the images or characters it asks for."""
    units = NO_UNITS
    if model.operation is Operation.IMAGES:
        n = body.get("n", 1)
        units = Units(images=n if isinstance(n, int) and not isinstance(n, bool) else 1)
    elif model.operation is Operation.SPEECH:
        text = body.get("input")
        units = Units(characters=len(text) if isinstance(text, str) else 0)
    return cost_units(model.prices.cost(Tokens(prompt, max(reserve - prompt, 0)), units))


async def chained(
    owners: ResponseOwners, caller: Caller, model: PublicModel, body: dict[str, Any]
) -> PublicModel:
    """A follow-up (`previous_response_id`) may name only the caller's own responses, and goes
    to the deployment that holds the one it names, whatever the pool's weights say."""
    previous = body.get("previous_response_id")
    if previous is None:
        return model
    if not isinstance(previous, str) or not previous:
        message = "'previous_response_id' must be the id of an earlier response."
        raise bad_request(message, code="invalid_value", param="previous_response_id")
    owner = await owners.owner(previous)
    if owner is None or owner.system != caller.system.id:  # never tell which
        message = f"Previous response with id '{previous}' not found."
        raise not_found(message, "previous_response_not_found")
    holder = tuple(m for m in model.pool if m.upstream.name == owner.deployment)
    if not holder:
        message = (
            f"The deployment that holds response '{previous}' no longer serves '{model.name}'; "
            "start a new conversation."
        )
        raise GatewayError(409, message, code="previous_response_unavailable")
    return replace(model, pool=holder, pinned_for=previous)
