"""The Redis client the gateway shares between limits and deployment health, and Microsoft
Entra ID sign-in to Azure Cache for Redis: the managed identity's token as password.

Each new connection asks for a token (azure-identity caches and renews it); a connection the
server drops when its token expires is reopened, with a fresh token, by the client's retry.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider

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
