"""Shared per-app state and the keys that reach it from handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .batches import Batch
from .config import SimulatorConfig
from .faults import Fault, FaultQueue, RequestLog
from .files import StoredFile
from .stored import StoredResponse
from .uploads import Form


@dataclass
class SimState:
    config: SimulatorConfig
    faults: FaultQueue = field(default_factory=FaultQueue)
    log: RequestLog = field(default_factory=RequestLog)
    # Stored Responses API answers by id, oldest first. Bounded (stored.STORED_LIMIT).
    responses: dict[str, StoredResponse] = field(default_factory=dict)
    # Files and batches by id, oldest first. Bounded (files.FILES_LIMIT, batches.BATCHES_LIMIT).
    files: dict[str, StoredFile] = field(default_factory=dict)
    batches: dict[str, Batch] = field(default_factory=dict)
    batches_created: int = 0  # ever, for `GET /_sim/batches`
    # Every multipart file part received (request id, path, size, SHA-256): `GET /_sim/uploads`.
    uploads: RequestLog = field(default_factory=RequestLog)

    def settle_batches(self) -> None:
        """Let every completed batch leave its output files (batches advance with the clock)."""
        for batch in self.batches.values():
            batch.settle(self.files)


@dataclass(slots=True)
class Call:
    """One API request on its way through the pipeline."""

    request: web.Request
    azure: bool
    # "chat" | "completions" | "embeddings" | "images" | "responses" | "stored" | "input_tokens"
    # | "files" | "batches" | "transcriptions" | "translations" | "speech" | "image_edits"
    # | "models" | "unknown"
    operation: str
    record: dict[str, Any]
    body: Any = None
    model: str | None = None
    fault: Fault | None = None
    foundry: bool = False  # Azure AI Foundry's model-inference API (`/models/...`)
    form: Form | None = None  # a multipart request's fields and file parts (body: its fields)


STATE = web.AppKey("tollgate_sim_state", SimState)
REQUEST_ID = web.RequestKey("tollgate_sim_request_id", str)
