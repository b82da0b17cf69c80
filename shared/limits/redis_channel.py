"""One pipelined connection to Redis for the limit scripts.

Every call is written at once and answered in order on the same connection, with hiredis
parsing the replies: calls made together travel together, and a call costs about a third of
the CPU redis-py spends on one (measured: 25 against 70 microseconds). It speaks only what
the scripts need: AUTH (a password, or an Entra ID token from a credential provider), SELECT,
EVALSHA and SCRIPT LOAD, over TCP or TLS (always verified).
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.credentials import CredentialProvider
from redis.exceptions import AuthenticationError, ConnectionError, InvalidResponse, ResponseError

from shared.errors import ConfigError

Arg = str | int | bytes


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> Address:
        if not url.startswith(("redis://", "rediss://")):
            raise ConfigError("TOLLGATE_REDIS_URL: use redis://host:port or rediss://host:port")
        parts = parse_url(url)
        return cls(
            host=str(parts.get("host") or "localhost"),
            port=int(parts.get("port") or 6379),
            db=int(parts.get("db") or 0),
            username=parts.get("username"),
            password=parts.get("password"),
            tls=parts.get("connection_class") is SSLConnection,
        )


def pack(args: tuple[Arg, ...]) -> bytes:
    """A command in RESP, the protocol's array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RedisChannel:
    def __init__(
        self,
        url: str,
        timeout_seconds: float = 0.5,
        credentials: CredentialProvider | None = None,
    ):
        self._address = Address.from_url(url)
        self._timeout = timeout_seconds
        self._credentials = credentials
        self._connection: _Connection | None = None
        self._connecting = asyncio.Lock()

    async def call(self, *args: Arg, orphaned: Callable[[Any], None] | None = None) -> Any:
        """The reply; ResponseError for an error reply, ConnectionError or TimeoutError when
        Redis cannot be reached. A connection lost under a call is reopened once for it.
        `orphaned` gets the reply of a call whose caller was cancelled after it was sent."""
        data = pack(args)
        for attempt in range(2):
            connection = await self._connected()
            reply = connection.send(data)
            try:
                async with asyncio.timeout(self._timeout):
                    answer = await asyncio.shield(reply)
            except TimeoutError:
                connection.close()  # its replies can no longer be matched to their calls
                raise
            except asyncio.CancelledError:
                if orphaned is not None:
                    reply.add_done_callback(lambda done: orphaned(done.result()))
                raise
            if isinstance(answer, ConnectionError) and attempt == 0:
                continue
            if isinstance(answer, Exception):
                raise answer
            return answer
        raise AssertionError("unreachable")

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and connection.open:
            return connection
        async with self._connecting:
            if self._connection is None or not self._connection.open:
                self._connection = await self._connect()
            return self._connection

    async def _connect(self) -> _Connection:
        address = self._address
        username, password = address.username, address.password
        if self._credentials is not None:  # an Entra ID token, fresh for each new connection
            given = await self._credentials.get_credentials_async()
            username, password = (None, given[0]) if len(given) == 1 else (given[0], given[-1])
        loop = asyncio.get_running_loop()
        tls = ssl.create_default_context() if address.tls else None
        async with asyncio.timeout(self._timeout):
            _, connection = await loop.create_connection(
                _Connection, address.host, address.port, ssl=tls
            )
            try:
                if password:
                    auth = ("AUTH", username, password) if username else ("AUTH", password)
                    _check(await connection.send(pack(auth)), AuthenticationError)
                if address.db:
                    _check(await connection.send(pack(("SELECT", address.db))), ResponseError)
            except BaseException:
                connection.close()
                raise
        return connection

    async def aclose(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _check(reply: Any, kind: type[Exception]) -> None:
    if isinstance(reply, Exception):
        raise kind(str(reply))  # never the credentials: only Redis's answer


class _Connection(asyncio.Protocol):
    """Replies are matched to calls by order. A call's future gets its reply or, when the
    connection is lost, a ConnectionError as its result (never set as an exception, so a call
    whose caller has gone leaves nothing unretrieved)."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._outbox: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        try:
            while (reply := self._reader.gets()) is not False:
                answer = self._waiting.popleft()
                if not answer.done():
                    answer.set_result(reply)
        except (InvalidResponse, IndexError):  # a stream we cannot follow: start again
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        lost = ConnectionError("Redis closed the connection")
        while self._waiting:
            answer = self._waiting.popleft()
            if not answer.done():
                answer.set_result(lost)

    def send(self, data: bytes) -> asyncio.Future[Any]:
        answer = asyncio.get_running_loop().create_future()
        if not self.open or self._transport is None:
            answer.set_result(ConnectionError("Redis connection closed"))
            return answer
        self._waiting.append(answer)
        if len(self._waiting) == 1:  # an idle connection: straight out
            self._transport.write(data)
        else:  # calls in flight: this turn's calls leave together, in one write
            if not self._outbox:
                asyncio.get_running_loop().call_soon(self._flush)
            self._outbox.append(data)
        return answer

    def _flush(self) -> None:
        if self._outbox and self._transport is not None and self.open:
            self._transport.write(b"".join(self._outbox))
        self._outbox.clear()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()  # connection_lost answers every waiting call
        self.open = False
