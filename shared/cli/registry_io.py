"""Reading and editing the registry for a command: the store and audit log the (resolved)
settings name, one line on stderr saying which registry it is, and a warning when there is
none, rather than an empty list that looks like a real one."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from shared.cli.output import note, warn
from shared.cli.where import cli_settings, describe
from shared.registry import admin
from shared.registry.audit import AuditLog
from shared.registry.store import RegistryStore, store_from_settings
from shared.registry.systems import systems_of
from shared.settings import Settings

T = TypeVar("T")
Document = dict[str, Any]
Spec = dict[str, Any]


def announce(settings: Settings) -> None:
    note(f"registry: {describe(settings.registry, settings)}")


def read() -> Document:
    """The registry document (empty, with a warning, when there is none)."""
    settings = cli_settings()
    announce(settings)
    document, etag = _with_store(settings, admin.read_document)
    if etag is None:
        warn(
            f"there is no registry at {describe(settings.registry, settings)} (so no systems); "
            "if the gateway uses another, set TOLLGATE_REGISTRY to it or run from its project"
        )
    return document


def edit(change: admin.Change[T]) -> T:
    """Apply a change and record it in the audit log."""
    settings = cli_settings()
    announce(settings)

    async def run() -> T:
        store, audit = store_from_settings(settings), AuditLog.from_settings(settings)
        try:
            return await admin.edit(store, change, audit)
        finally:
            await store.aclose()
            await audit.aclose()

    return asyncio.run(run())


def edit_system(system_id: str, change: admin.Change[T]) -> tuple[Spec, Spec | None, T]:
    """Apply a change to one system: the system before and after (None: deleted), and what the
    change returned, for a command to say what it did."""

    def apply(document: Document) -> tuple[Spec, Spec | None, T]:
        before = copy.deepcopy(admin.system_of(document, system_id))
        result = change(document)
        after = systems_of(document).get(system_id)
        return before, copy.deepcopy(after), result

    return edit(admin.Change(change.action, apply))


def _with_store(settings: Settings, action: Callable[[RegistryStore], Awaitable[T]]) -> T:
    async def run() -> T:
        store = store_from_settings(settings)
        try:
            return await action(store)
        finally:
            await store.aclose()

    return asyncio.run(run())
