"""The Redis client the gateway shares between limits and deployment health, and Microsoft
Entra ID sign-in to Azure Cache for Redis: the managed identity's token as password.

Each new connection asks for a token (azure-identity caches and renews it); a connection the
server drops when its token expires is reopened, with a fresh token, by the client's retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azure.core.credentials_async import AsyncTokenCredential
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider

if TYPE_CHECKING:
    from shared.settings import Settings

REDIS_SCOPE = "https://redis.azure.com/.default"


class EntraIdCredentials(CredentialProvider):
    def __init__(self, credential: AsyncTokenCredential, username: str):
        self._credential = credential
        self._username = username  # the identity's object (principal) id

    def get_credentials(self) -> tuple[str, str]:
        raise NotImplementedError("Tollgate uses the asyncio client only")

    async def get_credentials_async(self) -> tuple[str, str]:
        token = await self._credential.get_token(REDIS_SCOPE)
        return self._username, token.token


def redis_client(
    url: str, timeout_seconds: float = 0.5, pool_size: int = 64, **options: Any
) -> Redis:
    """A client that fails fast (the outage policy then decides) and queues for a connection
    rather than opening one per concurrent request."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        health_check_interval=30,
        **options,
    )
    return Redis(connection_pool=pool, retry=Retry(NoBackoff(), 1))


def admin_client(settings: Settings) -> tuple[Redis, AsyncTokenCredential | None]:
    """A client for a command (patient, two connections), signed in as the gateways are (the
    URL's password, or Entra ID); and the credential to close with it."""
    from shared.errors import ConfigError

    if not settings.redis_url:
        raise ConfigError("TOLLGATE_REDIS_URL is not set")
    if settings.redis_auth != "entra":
        return redis_client(settings.redis_url, timeout_seconds=5.0, pool_size=2), None
    if not settings.redis_username:
        raise ConfigError("TOLLGATE_REDIS_AUTH=entra needs TOLLGATE_REDIS_USERNAME (object id)")
    from shared.auth.secrets import build_credential

    credential = build_credential(settings.azure_client_id)
    provider = EntraIdCredentials(credential, settings.redis_username)
    client = redis_client(settings.redis_url, 5.0, 2, credential_provider=provider)
    return client, credential
