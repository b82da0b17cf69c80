"""Microsoft Entra ID sign-in to Azure Cache for Redis: the managed identity's token as password.

Each new connection asks for a token (azure-identity caches and renews it); a connection the
server drops when its token expires is reopened, with a fresh token, by the client's retry.
"""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
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
