"""Checks made in the gateway itself, with no service: the policy's patterns and the terms of
its blocklists (case-insensitive, as Azure AI Content Safety matches them)."""

from __future__ import annotations

from shared.guardrails.policy import ContentPolicy
from shared.guardrails.verdict import Finding


def local_findings(policy: ContentPolicy, text: str) -> tuple[Finding, ...]:
    found: list[Finding] = []
    for number, pattern in enumerate(policy.patterns, start=1):
        if pattern.search(text):
            found.append(Finding("pattern", name=str(number)))
    if policy.terms:
        folded = text.casefold()
        for blocklist, term in policy.terms:
            if term.casefold() in folded:
                found.append(Finding("blocklist", name=blocklist))
                break
    return tuple(found)
