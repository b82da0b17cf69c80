"""What a check found, and how a refusal says it: Azure OpenAI's own content-filter shape
(`code: content_filter`, with each category's severity), never the text that fired."""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import GatewayError

# Azure AI Content Safety's severities (0-7) in Azure OpenAI's words.
_LEVELS = ((6, "high"), (4, "medium"), (2, "low"), (0, "safe"))


@dataclass(frozen=True)
class Finding:
    kind: str  # a category (hate, sexual, violence, self_harm), jailbreak, indirect_attack,
    # blocklist or pattern
    severity: int = 0  # for a category; 0 otherwise
    name: str = ""  # the blocklist's name, or the pattern's number

    def label(self) -> str:
        if self.kind in ("blocklist", "pattern"):
            return f"{self.kind}:{self.name}"
        return f"{self.kind}:{self.severity}" if self.severity else self.kind


@dataclass(frozen=True)
class Verdict:
    checks: tuple[str, ...] = ()  # which ran: local, content_safety, prompt_shields
    blocked: tuple[Finding, ...] = ()
    unavailable: bool = False  # Content Safety did not answer (the outage policy decided)

    def flags(self) -> str:
        return ",".join(finding.label() for finding in self.blocked)


PASSED = Verdict()


def severity_name(severity: int) -> str:
    return next(name for floor, name in _LEVELS if severity >= floor)


def filter_result(findings: tuple[Finding, ...]) -> dict[str, object]:
    """`content_filter_result` as Azure OpenAI writes it, for the categories that fired."""
    result: dict[str, object] = {}
    for finding in findings:
        if finding.kind in ("jailbreak", "indirect_attack"):
            result[finding.kind] = {"filtered": True, "detected": True}
        elif finding.kind in ("blocklist", "pattern"):
            lists = result.setdefault("custom_blocklists", {"filtered": True, "details": []})
            assert isinstance(lists, dict)
            lists["details"].append({"filtered": True, "id": finding.label()})
        else:
            level = severity_name(finding.severity)
            result[finding.kind] = {"filtered": True, "severity": level}
    return result


def prompt_refusal(verdict: Verdict) -> GatewayError:
    message = (
        "The request was filtered because the prompt triggered this gateway's content policy "
        f"({_kinds(verdict)}). Please modify your prompt and retry."
    )
    return GatewayError(
        400,
        message,
        code="content_filter",
        param="prompt",
        extra={
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": filter_result(verdict.blocked),
            },
        },
    )


def answer_message(verdict: Verdict) -> str:
    return (
        "The answer was filtered because it triggered this gateway's content policy "
        f"({_kinds(verdict)})."
    )


def _kinds(verdict: Verdict) -> str:
    return ", ".join(dict.fromkeys(f.kind.replace("_", "-") for f in verdict.blocked))


def unavailable() -> GatewayError:
    message = "Content checks cannot be made right now; retry shortly."
    return GatewayError(
        503,
        message,
        type="server_error",
        code="content_check_unavailable",
        headers={"retry-after": "1"},
    )
