"""A local HTTPS stand-in for the Azure AI Content Safety REST API, scripted by tests.

The real ``azure-ai-contentsafety`` aio clients (``ContentSafetyClient``, ``BlocklistClient``) and
``azure.identity.aio.ManagedIdentityCredential`` run unchanged against it; TLS verification stays
on (trust ``ca_file``)::

    async with ContentSafetyStandIn() as cs:
        cs.flag("crowbar", "Violence", 5)           # severity 5 (4 with FourSeverityLevels)
        cs.attack("ignore previous instructions")   # Prompt Shields flags texts containing it
        client = ContentSafetyClient(cs.url, AzureKeyCredential(cs.key),
                                     connection_verify=cs.ca_file, retry_total=0)

Surface (base ``/contentsafety``, ``api-version`` 2023-10-01 or 2024-09-01, else 400):
``text:analyze``, ``text:shieldPrompt`` (2024-09-01 only, else 404; the SDK has no method for it,
use ``client.send_request``), and the text blocklist operations of ``BlocklistClient``. Errors use
the service's shape ``{"error": {"code", "message"}}``.

Credentials: ``Ocp-Apim-Subscription-Key: <key>``, or ``Authorization: Bearer <jwt>`` whose
(unchecked-signature) payload has ``aud`` ``https://cognitiveservices.azure.com`` and has not
expired; anything else is 401 ``PermissionDenied``. Bearer tokens come from the App Service
managed identity endpoint of a `KeyVaultStandIn` (it issues such JWTs for any resource but Key
Vault). By default the stand-in starts and owns one; pass ``identity=kv`` to share a running one
with a test that also needs Key Vault, so a gateway subprocess has a single ``IDENTITY_ENDPOINT``.
``credential_env()`` gives ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``; ``gateway_env()`` adds the
gateway's Content Safety settings (endpoint and CA file; no key secret, so managed identity).

The server runs on the loop that started it. A test that blocks its loop while a gateway
subprocess calls the stand-in must use ``in_thread()``; ``stop_serving()``/``resume_serving()``
then take the HTTPS server down and back up on the same port (``await stop()``/``start()`` do the
same when not threaded). The identity endpoint and ``ca_file`` survive a stop.

``calls`` lists every authenticated request that reached the service, including those answered
400/404/503 (``outage``), each as ``{"method", "path", "api_version", "body", "auth", "status"}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import re
import secrets
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import web

from tests.support.keyvault_standin import KeyVaultStandIn, write_self_signed_cert

COGNITIVE_RESOURCE = "https://cognitiveservices.azure.com"
API_VERSIONS = frozenset({"2023-10-01", "2024-09-01"})
SHIELD_API_VERSION = "2024-09-01"
CATEGORIES = ("Hate", "SelfHarm", "Sexual", "Violence")
OUTPUT_TYPES = ("FourSeverityLevels", "EightSeverityLevels")
MAX_TEXT = 10_000  # characters (code points) per analysis or shield request
MAX_ITEM_TEXT = 128
BASE = "/contentsafety"
_NAME = "{name:[^/:]+}"
_BLOCKLIST_NAME = re.compile(r"[0-9A-Za-z_.~-]{1,64}")
_CANONICAL = {category.lower(): category for category in CATEGORIES}
_BODY: web.RequestKey[Any] = web.RequestKey("body")  # the parsed JSON (or raw text) body

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class ServiceError(Exception):
    """An error answer in the service's shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> web.Response:
        body = {"error": {"code": self.code, "message": self.message}}
        return web.json_response(body, status=self.status)


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, "InvalidRequestBody", message)


def _not_found(what: str) -> ServiceError:
    return ServiceError(404, "NotFound", f"{what} was not found.")


def _jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT, unverified (the identity stand-in signs nothing)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def _bearer_ok(token: str) -> bool:
    claims = _jwt_claims(token)
    if claims is None or str(claims.get("aud", "")).rstrip("/") != COGNITIVE_RESOURCE:
        return False
    expires = claims.get("exp")
    return not isinstance(expires, int | float) or expires > time.time()


def _object(request: web.Request) -> dict[str, Any]:
    body = request[_BODY]
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    return body


def _strings(value: Any, field_name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(f"'{field_name}' must be an array of strings.")
    return value


def _query_int(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdigit():
        raise ServiceError(400, "InvalidRequest", f"'{name}' must be a non-negative integer.")
    return int(raw)


@dataclass
class _Blocklist:
    description: str | None = None
    items: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> item, in added order

    def as_json(self, name: str) -> dict[str, str]:
        answer = {"blocklistName": name}
        if self.description is not None:
            answer["description"] = self.description
        return answer

    def save(self, text: str, description: str, item_id: str | None) -> dict[str, str]:
        """Add an item, or update the one with this id or (failing that) this text."""
        if item_id not in self.items:
            same_text = (i for i, item in self.items.items() if item["text"] == text)
            item_id = next(same_text, None) or str(uuid.uuid4())
        item = {"blocklistItemId": item_id, "text": text, "description": description}
        self.items[item_id] = item
        return dict(item)


@dataclass(frozen=True)
class _Flag:
    term: str  # lower-cased
    category: str
    severity: int


class ContentSafetyStandIn:
    """Content Safety text analysis, Prompt Shields and blocklists, over HTTPS on 127.0.0.1."""

    def __init__(self, identity: KeyVaultStandIn | None = None, *, key: str | None = None) -> None:
        self.key = key or secrets.token_hex(16)
        self.delay_seconds = 0.0  # before each analyze / shield answer
        self.outage = False  # answer 503 ServiceUnavailable to authenticated requests
        self.identity = identity or KeyVaultStandIn()
        self._owns_identity = identity is None
        self._identity_started = False
        self._lock = threading.Lock()
        self._flags: list[_Flag] = []
        self._attacks: list[str] = []
        self._calls: list[dict[str, Any]] = []
        self._lists: dict[str, _Blocklist] = {}
        self._runner: web.AppRunner | None = None
        self._tmpdir: Path | None = None
        self._tls: ssl.SSLContext | None = None
        self._port = 0
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve (again, on the same port after `stop`); the first start makes the certificate."""
        if self._runner is not None:
            return
        if self._tls is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="cs-standin-"))
            cert_path, key_path = write_self_signed_cert(self._tmpdir)
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(cert_path, key_path)
        if self._owns_identity and not self._identity_started:
            await self.identity.start()
            self._identity_started = True
        self._runner = await self._serve(self._tls)

    async def stop(self) -> None:
        """Stop the HTTPS server only (clients then get connection errors); `start` resumes."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def close(self) -> None:
        """Stop everything and delete the certificate."""
        await self.stop()
        if self._identity_started:
            await self.identity.stop()
            self._identity_started = False
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir, self._tls = None, None

    async def __aenter__(self) -> ContentSafetyStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @contextmanager
    def in_thread(self) -> Iterator[ContentSafetyStandIn]:
        """Serve from a private event loop in a daemon thread, for synchronous tests."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="cs-standin", daemon=True)
        thread.start()
        self._thread_loop = loop
        try:
            self._on_thread(self.start())
            yield self
        finally:
            self._on_thread(self.close())
            self._thread_loop = None
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()

    def stop_serving(self) -> None:
        """`stop`, from any thread, for a stand-in running `in_thread()`."""
        self._on_thread(self.stop())

    def resume_serving(self) -> None:
        """`start` again on the same port, from any thread, for a stand-in `in_thread()`."""
        self._on_thread(self.start())

    def _on_thread(self, work: Coroutine[Any, Any, T]) -> T:
        if self._thread_loop is None:
            work.close()
            raise RuntimeError("not running in_thread(): await stop()/start() instead")
        return asyncio.run_coroutine_threadsafe(work, self._thread_loop).result(timeout=30)

    async def _serve(self, tls: ssl.SSLContext) -> web.AppRunner:
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        await web.SockSite(runner, sock, ssl_context=tls).start()
        self._port = sock.getsockname()[1]
        return runner

    # -- what tests read ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint to give the SDK (it appends ``/contentsafety``)."""
        return f"https://127.0.0.1:{self._port}"

    @property
    def ca_file(self) -> str:
        assert self._tmpdir is not None, "stand-in not started"
        return str(self._tmpdir / "standin.crt")

    def credential_env(self) -> dict[str, str]:
        """Env vars that make ManagedIdentityCredential get tokens from the identity endpoint."""
        return self.identity.credential_env()

    def gateway_env(self) -> dict[str, str]:
        """Env for a gateway subprocess to call this stand-in as its managed identity."""
        return {
            "TOLLGATE_CONTENT_SAFETY_ENDPOINT": self.url,
            "TOLLGATE_CONTENT_SAFETY_CA_FILE": self.ca_file,
            **self.credential_env(),
        }

    @property
    def calls(self) -> list[dict[str, Any]]:
        """Every authenticated request so far (a snapshot)."""
        with self._lock:
            return list(self._calls)

    @property
    def auth_kinds(self) -> list[str]:
        """The credential kind of each call: "key" or "bearer"."""
        return [call["auth"] for call in self.calls]

    @property
    def blocklists(self) -> dict[str, list[str]]:
        """Each blocklist's item texts, in the order they were added."""
        with self._lock:
            return {
                name: [item["text"] for item in blocklist.items.values()]
                for name, blocklist in self._lists.items()
            }

    # -- scripting ------------------------------------------------------------------------------

    def flag(self, term: str, category: str, severity: int) -> None:
        """Texts containing `term` (any case) score `severity` (0..7) in `category`."""
        canonical = _CANONICAL.get(category.lower())
        if not term or canonical is None or not 0 <= severity <= 7:
            raise ValueError(f"bad flag: {term!r} {category!r} {severity!r}")
        with self._lock:
            self._flags.append(_Flag(term.lower(), canonical, severity))

    def attack(self, term: str) -> None:
        """Prompt Shields reports an attack in any user prompt or document containing `term`."""
        if not term:
            raise ValueError("empty attack term")
        with self._lock:
            self._attacks.append(term.lower())

    def reset(self) -> None:
        """Forget flags, attacks, calls and blocklists; no delay, no outage."""
        with self._lock:
            self._flags.clear()
            self._attacks.clear()
            self._calls.clear()
            self._lists.clear()
        self.delay_seconds = 0.0
        self.outage = False

    # -- HTTP -----------------------------------------------------------------------------------

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        lists = f"{BASE}/text/blocklists"
        app.router.add_post(f"{BASE}/text:analyze", self._analyze)
        app.router.add_post(f"{BASE}/text:shieldPrompt", self._shield)
        app.router.add_get(lists, self._list_blocklists)
        app.router.add_patch(f"{lists}/{_NAME}", self._upsert_blocklist)
        app.router.add_get(f"{lists}/{_NAME}", self._get_blocklist)
        app.router.add_delete(f"{lists}/{_NAME}", self._delete_blocklist)
        app.router.add_post(f"{lists}/{_NAME}:addOrUpdateBlocklistItems", self._add_items)
        app.router.add_post(f"{lists}/{_NAME}:removeBlocklistItems", self._remove_items)
        app.router.add_get(f"{lists}/{_NAME}/blocklistItems", self._list_items)
        app.router.add_get(f"{lists}/{_NAME}/blocklistItems/{{item_id}}", self._get_item)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate, record the call, then answer (errors in the service's shape)."""
        kind = self._auth_kind(request)
        if kind is None:
            message = "Access denied: invalid subscription key, or a token for the wrong audience."
            return ServiceError(401, "PermissionDenied", message).response()
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request[_BODY] = body
        call = {
            "method": request.method,
            "path": request.path,
            "api_version": request.query.get("api-version"),
            "body": body,
            "auth": kind,
        }
        with self._lock:
            self._calls.append(call)
        response = await self._answer(request, handler)
        call["status"] = response.status
        return response

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if self.outage:
                raise ServiceError(503, "ServiceUnavailable", "The service is unavailable.")
            if request.query.get("api-version") not in API_VERSIONS:
                supported = ", ".join(sorted(API_VERSIONS))
                message = f"Missing or unsupported api-version; supported: {supported}."
                raise ServiceError(400, "InvalidRequest", message)
            if request.method in ("POST", "PATCH") and request[_BODY] is None:
                request[_BODY] = {}  # PATCH of a blocklist may have no body
            return await handler(request)
        except ServiceError as error:
            return error.response()
        except web.HTTPException as error:
            code = error.reason.replace(" ", "")
            return ServiceError(error.status, code, f"{request.method} {request.path}").response()

    def _auth_kind(self, request: web.Request) -> str | None:
        key = request.headers.get("Ocp-Apim-Subscription-Key")
        if key is not None:
            return "key" if hmac.compare_digest(key.encode(), self.key.encode()) else None
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return "bearer" if scheme.lower() == "bearer" and _bearer_ok(token.strip()) else None

    async def _pause(self) -> None:
        if self.delay_seconds > 0:
            await asyncio.sleep(self.delay_seconds)

    # -- text:analyze ---------------------------------------------------------------------------

    async def _analyze(self, request: web.Request) -> web.Response:
        body = _object(request)
        text = body.get("text")
        if not isinstance(text, str):
            raise _invalid("'text' is required and must be a string.")
        if len(text) > MAX_TEXT:
            raise _invalid(f"'text' is longer than {MAX_TEXT} characters.")
        categories = self._requested_categories(body.get("categories"))
        eight = self._eight_levels(body.get("outputType"))
        names = list(dict.fromkeys(_strings(body.get("blocklistNames"), "blocklistNames")))
        with self._lock:
            matches = self._blocklist_matches(text, names)
            halted = bool(matches) and body.get("haltOnBlocklistHit") is True
            analysis = [] if halted else [self._analysis(text, c, eight) for c in categories]
        await self._pause()
        return web.json_response({"blocklistsMatch": matches, "categoriesAnalysis": analysis})

    @staticmethod
    def _requested_categories(value: Any) -> list[str]:
        categories = _strings(value, "categories") or list(CATEGORIES)
        unknown = [category for category in categories if category not in CATEGORIES]
        if unknown:
            raise _invalid(f"Unknown categories: {unknown}.")
        return list(dict.fromkeys(categories))

    @staticmethod
    def _eight_levels(value: Any) -> bool:
        if value is not None and value not in OUTPUT_TYPES:
            raise _invalid(f"'outputType' must be one of {OUTPUT_TYPES}.")
        return bool(value == "EightSeverityLevels")

    def _analysis(self, text: str, category: str, eight: bool) -> dict[str, Any]:
        lowered = text.lower()
        scores = (f.severity for f in self._flags if f.category == category and f.term in lowered)
        severity = max(scores, default=0)
        return {"category": category, "severity": severity if eight else severity - severity % 2}

    def _blocklist_matches(self, text: str, names: list[str]) -> list[dict[str, str]]:
        lowered = text.lower()
        return [
            {
                "blocklistName": name,
                "blocklistItemId": item["blocklistItemId"],
                "blocklistItemText": item["text"],
            }
            for name in names
            for item in self._blocklist(name).items.values()
            if item["text"].lower() in lowered
        ]

    # -- text:shieldPrompt ----------------------------------------------------------------------

    async def _shield(self, request: web.Request) -> web.Response:
        if request.query.get("api-version") != SHIELD_API_VERSION:
            raise ServiceError(
                404, "NotFound", f"shieldPrompt needs api-version {SHIELD_API_VERSION}."
            )
        body = _object(request)
        prompt = body.get("userPrompt", "")
        if not isinstance(prompt, str):
            raise _invalid("'userPrompt' must be a string.")
        documents = _strings(body.get("documents"), "documents")
        if len(prompt) + sum(len(document) for document in documents) > MAX_TEXT:
            raise _invalid(f"userPrompt and documents together exceed {MAX_TEXT} characters.")
        with self._lock:
            answer = {
                "userPromptAnalysis": {"attackDetected": self._is_attack(prompt)},
                "documentsAnalysis": [{"attackDetected": self._is_attack(d)} for d in documents],
            }
        await self._pause()
        return web.json_response(answer)

    def _is_attack(self, text: str) -> bool:
        lowered = text.lower()
        return any(term in lowered for term in self._attacks)

    # -- blocklists -----------------------------------------------------------------------------

    def _blocklist(self, name: str) -> _Blocklist:
        blocklist = self._lists.get(name)
        if blocklist is None:
            raise _not_found(f"Blocklist '{name}'")
        return blocklist

    async def _list_blocklists(self, request: web.Request) -> web.Response:
        with self._lock:
            value = [blocklist.as_json(name) for name, blocklist in self._lists.items()]
        return web.json_response({"value": value})

    async def _upsert_blocklist(self, request: web.Request) -> web.Response:
        name, body = request.match_info["name"], _object(request)
        if not _BLOCKLIST_NAME.fullmatch(name):
            raise ServiceError(400, "InvalidResourceName", f"Bad blocklist name '{name}'.")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise _invalid("'description' must be a string.")
        with self._lock:
            created = name not in self._lists
            blocklist = self._lists.setdefault(name, _Blocklist())
            if "description" in body:
                blocklist.description = description
            answer = blocklist.as_json(name)
        return web.json_response(answer, status=201 if created else 200)

    async def _get_blocklist(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self._lock:
            return web.json_response(self._blocklist(name).as_json(name))

    async def _delete_blocklist(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self._lock:
            self._blocklist(name)
            del self._lists[name]
        return web.Response(status=204)

    async def _add_items(self, request: web.Request) -> web.Response:
        specs = self._item_specs(_object(request).get("blocklistItems"))
        with self._lock:
            blocklist = self._blocklist(request.match_info["name"])
            saved = [blocklist.save(*spec) for spec in specs]
        return web.json_response({"blocklistItems": saved})

    @staticmethod
    def _item_specs(items: Any) -> list[tuple[str, str, str | None]]:
        """(text, description, id or None) of each item, all validated before any is saved."""
        if not isinstance(items, list) or not items:
            raise _invalid("'blocklistItems' must be a non-empty array.")
        specs = []
        for item in items:
            text = item.get("text") if isinstance(item, dict) else None
            if not isinstance(text, str) or not 0 < len(text) <= MAX_ITEM_TEXT:
                raise _invalid(f"Each item needs a 'text' of 1 to {MAX_ITEM_TEXT} characters.")
            description, item_id = item.get("description") or "", item.get("blocklistItemId")
            if not isinstance(description, str) or not isinstance(item_id, str | None):
                raise _invalid("'description' and 'blocklistItemId' must be strings.")
            specs.append((text, description, item_id))
        return specs

    async def _remove_items(self, request: web.Request) -> web.Response:
        ids = _strings(_object(request).get("blocklistItemIds"), "blocklistItemIds")
        with self._lock:
            blocklist = self._blocklist(request.match_info["name"])
            for item_id in ids:
                blocklist.items.pop(item_id, None)
        return web.Response(status=204)

    async def _list_items(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        top, skip = _query_int(request, "top"), _query_int(request, "skip") or 0
        page_size = _query_int(request, "maxpagesize")
        with self._lock:
            items = list(self._blocklist(name).items.values())
        wanted = items[skip:] if top is None else items[skip : skip + top]
        if not page_size or len(wanted) <= page_size:
            return web.json_response({"value": wanted})
        rest = {"skip": skip + page_size, "maxpagesize": page_size}
        if top is not None:
            rest["top"] = top - page_size
        next_link = f"{self.url}{BASE}/text/blocklists/{quote(name)}/blocklistItems"
        return web.json_response(
            {"value": wanted[:page_size], "nextLink": f"{next_link}?{urlencode(rest)}"}
        )

    async def _get_item(self, request: web.Request) -> web.Response:
        name, item_id = request.match_info["name"], request.match_info["item_id"]
        with self._lock:
            item = self._blocklist(name).items.get(item_id)
            if item is None:
                raise _not_found(f"Item '{item_id}' of blocklist '{name}'")
            return web.json_response(dict(item))
