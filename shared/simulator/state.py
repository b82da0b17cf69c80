"""Shared per-app state and the keys that reach it from handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .config import SimulatorConfig
from .faults import Fault, FaultQueue, RequestLog
from .stored import StoredResponse


@dataclass
class SimState:
    config: SimulatorConfig
    faults: FaultQueue = field(default_factory=FaultQueue)
    log: RequestLog = field(default_factory=RequestLog)
    # Stored Responses API answers by id, oldest first. Bounded (stored.STORED_LIMIT).
    responses: dict[str, StoredResponse] = field(default_factory=dict)


@dataclass(slots=True)
class Call:
    """One API request on its way through the pipeline."""

    request: web.Request
    azure: bool
    # "chat" | "completions" | "embeddings" | "images" | "responses" | "stored" | "input_tokens"
    # | "models" | "unknown"
    operation: str
    record: dict[str, Any]
    body: Any = None
    model: str | None = None
    fault: Fault | None = None
    foundry: bool = False  # Azure AI Foundry's model-inference API (`/models/...`)


STATE = web.AppKey("tollgate_sim_state", SimState)
REQUEST_ID = web.RequestKey("tollgate_sim_request_id", str)
