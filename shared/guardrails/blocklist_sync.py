"""`tollgate blocklists sync`: Azure AI Content Safety's copy of each blocklist made the same
as the registry's (created if missing, terms added and removed), with the SDK's blocklist
client, signed in as the gateways are."""

from __future__ import annotations

from typing import Any

from shared.settings import Settings


async def sync_blocklists(
    settings: Settings, lists: dict[str, tuple[str, ...]]
) -> dict[str, tuple[int, int]]:
    """For each blocklist: (terms added, terms removed) in Content Safety."""
    from azure.ai.contentsafety.aio import BlocklistClient

    credential, closing = await _credential(settings)
    options = {"connection_verify": settings.content_safety_ca_file}
    assert settings.content_safety_endpoint
    client = BlocklistClient(
        settings.content_safety_endpoint,
        credential,
        **{k: v for k, v in options.items() if v},
    )
    try:
        return {name: await _sync_one(client, name, terms) for name, terms in lists.items()}
    finally:
        await client.close()
        if closing is not None:
            await closing.close()


async def _sync_one(client: Any, name: str, terms: tuple[str, ...]) -> tuple[int, int]:
    from azure.ai.contentsafety.models import (
        AddOrUpdateTextBlocklistItemsOptions,
        RemoveTextBlocklistItemsOptions,
        TextBlocklist,
        TextBlocklistItem,
    )

    await client.create_or_update_text_blocklist(
        name, TextBlocklist(blocklist_name=name, description="kept by Tollgate")
    )
    there = {
        item.text: item.blocklist_item_id async for item in client.list_text_blocklist_items(name)
    }
    wanted = set(terms)
    stale = [item_id for text, item_id in there.items() if text not in wanted]
    missing = [TextBlocklistItem(text=term) for term in terms if term not in there]
    if missing:
        await client.add_or_update_blocklist_items(
            name, AddOrUpdateTextBlocklistItemsOptions(blocklist_items=missing)
        )
    if stale:
        await client.remove_blocklist_items(
            name, RemoveTextBlocklistItemsOptions(blocklist_item_ids=stale)
        )
    return len(missing), len(stale)


async def _credential(settings: Settings) -> tuple[Any, Any]:
    """A key from the secret store, or the identity; and what to close afterwards."""
    if settings.content_safety_key_secret:
        from azure.core.credentials import AzureKeyCredential

        from shared.auth.upstream_credentials import secret_provider_from

        provider = secret_provider_from(settings)
        try:
            key = await provider.get(settings.content_safety_key_secret)
        finally:
            await provider.aclose()
        return AzureKeyCredential(key), None
    from shared.auth.secrets import build_credential

    credential = build_credential(settings.azure_client_id)
    return credential, credential
