"""Who is calling and what they may use: key check, systemId check, model resolution."""

from __future__ import annotations

from starlette.requests import Request

from shared.auth.entra import EntraValidator, TokenRejected, system_for
from shared.auth.jwks import JwksUnavailable
from shared.errors import bad_request, forbidden, not_found, server_error, unauthorized
from shared.http.inbound import presented_key
from shared.protection.netacl import AllowList
from shared.registry.cache import RegistryCache
from shared.registry.systems import Caller, Registry
from shared.routes import Operation
from shared.upstream.config import GatewayConfig, PublicModel


async def authenticate(
    request: Request, registry: RegistryCache, entra: EntraValidator | None = None
) -> Caller:
    key = presented_key(request)
    caller: Caller | None
    if entra is not None and _looks_like_jwt(key):
        caller = await _entra_caller(key, entra, await registry.current())
    else:
        caller = (await registry.current()).authenticate(key)
    if caller is None:
        raise unauthorized(
            "Invalid, revoked or unknown gateway key. A key created in the last "
            f"{registry.refresh_seconds:g} s may not be known here yet (the gateway re-reads "
            "its registry that often): retry shortly."
        )
    claimed = request.headers.get("systemid")
    if claimed is not None and claimed != caller.system.id:
        raise unauthorized(
            "The gateway key does not belong to the system named in the systemId header.",
            code="system_mismatch",
        )
    return caller


def resolve_model(
    config: GatewayConfig, caller: Caller, name: str, operation: Operation
) -> PublicModel:
    model = config.models.get(name)
    if model is None:
        raise not_found(f"The model '{name}' does not exist.", "model_not_found")
    if not caller.system.allows(name):
        raise forbidden(
            f"System '{caller.system.id}' is not allowed to use the model '{name}'.",
            "model_not_allowed",
        )
    served = config.served.get((name, operation))
    if served is None:
        raise bad_request(
            f"The model '{name}' does not support {operation.value}.",
            code="operation_not_supported",
            param="model",
        )
    return served


def allowed_models(config: GatewayConfig, caller: Caller) -> list[PublicModel]:
    return [m for name, m in sorted(config.models.items()) if caller.system.allows(name)]


def check_network(allowed: AllowList, address: str, whose: str = "this gateway") -> None:
    if not allowed.allows(address):
        raise forbidden(
            f"Requests from this network are not allowed for {whose}.", "network_not_allowed"
        )


def _looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


async def _entra_caller(token: str, entra: EntraValidator, registry: Registry) -> Caller:
    """The system comes from the token (its app id or app role), never from the caller."""
    try:
        claims = await entra.validate(token)
    except TokenRejected as exc:
        raise unauthorized(f"Entra ID token rejected: {exc.reason}.", "invalid_token") from None
    except JwksUnavailable:
        message = "Entra ID signing keys are unavailable; retry shortly."
        raise server_error(503, message, "identity_unavailable", {"retry-after": "5"}) from None
    system_id = system_for(claims, registry.entra)
    caller = registry.caller_for_app(system_id, claims.app_id) if system_id else None
    if caller is None:
        raise unauthorized(
            "This Entra ID application is not mapped to one calling system.", "identity_not_mapped"
        )
    return caller
