"""function_app.py's registrations, and the ASGI host built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from starlette.routing import Route

import asgi
import function_app
from shared import routes
from shared.host.asgi import host_route_prefix, http_routes, route_path
from tests.support.functions import fresh_function_app

ROOT = Path(__file__).resolve().parents[1]

EXPECTED = {r.name: (r.template, list(r.methods)) for r in routes.ROUTES}


def test_the_route_table_holds_the_seeds_route() -> None:
    """The seed's own client posts here; the table is what function_app.py registers."""
    assert EXPECTED["gateway_chat_completions"] == ("gateway/chat/completions/{model}", ["POST"])
    assert EXPECTED["fallback"] == ("{*path}", list(routes.ALL_METHODS))
    assert len({r.template for r in routes.ROUTES}) == len(routes.ROUTES)


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    return {f.get_function_name(): f for f in fresh_function_app().app.get_functions()}


def test_every_route_with_its_methods_and_auth_level(functions: dict[str, Any]) -> None:
    assert set(functions) == set(EXPECTED) | {"latency_probe"}
    for name, (route, methods) in EXPECTED.items():
        trigger = functions[name].get_trigger().get_dict_repr()
        assert trigger["type"] == "httpTrigger"
        assert trigger["route"] == route
        assert [m.value for m in trigger["methods"]] == methods
        assert trigger["authLevel"] == func.AuthLevel.ANONYMOUS


def test_the_probe_timer_uses_the_schedule_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOLLGATE_PROBE_SCHEDULE", "30 */5 * * * *")
    module = fresh_function_app()
    (timer,) = [f for f in module.app.get_functions() if f.get_function_name() == "latency_probe"]
    trigger = timer.get_trigger().get_dict_repr()
    assert trigger["type"] == "timerTrigger"
    assert trigger["schedule"] == "30 */5 * * * *"
    assert trigger["runOnStartup"] is False


def test_every_http_function_is_async(functions: dict[str, Any]) -> None:
    import inspect

    for function in functions.values():
        assert inspect.iscoroutinefunction(function.get_user_function())


def test_host_json_drops_the_api_prefix() -> None:
    assert host_route_prefix(ROOT / "host.json") == ""


@pytest.mark.parametrize(
    ("template", "prefix", "path"),
    [
        ("gateway/chat/completions/{model}", "", "/gateway/chat/completions/{model}"),
        ("{*path}", "", "/{path:path}"),
        ("items/{id:int}", "api", "/api/items/{id:int}"),
        ("items/{id:guid}/x", "/api/", "/api/items/{id:uuid}/x"),
        ("v1/models", "", "/v1/models"),
    ],
)
def test_route_templates_translate(template: str, prefix: str, path: str) -> None:
    assert route_path(template, prefix) == path


def test_asgi_app_is_built_from_the_registrations() -> None:
    served = {r.name: r for r in asgi.app.routes if isinstance(r, Route)}
    assert set(served) == set(EXPECTED)
    endpoint = served["gateway_chat_completions"].endpoint
    assert endpoint.__module__ == function_app.__name__
    assert endpoint.__name__ == "gateway_chat_completions"
    assert list(served)[-1] == "fallback"  # the catch-all is tried last


def test_non_http_triggers_are_not_served() -> None:
    app = func.FunctionApp()

    @app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
    def tick(timer: func.TimerRequest) -> None:
        return None

    @app.route(route="ping", methods=["GET"])
    async def ping(req: Any) -> str:
        return "pong"

    assert [r.path for r in http_routes(app, "api")] == ["/api/ping"]
