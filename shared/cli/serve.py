"""`tollgate serve`, `tollgate run` and `tollgate simulator`: run the gateway locally."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from collections.abc import Coroutine
from typing import Any
from urllib.parse import urlparse

from shared.host.log_format import configure_logging, logging_config
from shared.registry import admin
from shared.registry.store import RegistryStore, store_from_settings
from shared.registry.systems import ALL_MODELS
from shared.settings import Settings
from shared.upstream.config import SIMULATOR_KEY_SECRET

DEMO_SYSTEM = "demo"
PROBE_SYSTEM = "latency-probe"
RUN_LABEL = "make run"


def add_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the gateway (function_app.py) with uvicorn")
    _listen_options(serve)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(handler=cmd_serve)
    run = commands.add_parser("run", help="gateway + built-in simulator + a demo system and key")
    _listen_options(run)
    run.set_defaults(handler=cmd_run)
    sim = commands.add_parser("simulator", help="run the upstream simulator alone")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=7072)
    sim.add_argument("--key", default=os.environ.get("TOLLGATE_SECRET_SIMULATOR_KEY", "sim-key"))
    sim.set_defaults(handler=cmd_simulator)


def _listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def _uvicorn_config(args: argparse.Namespace, workers: int = 1) -> Any:
    import uvicorn

    from shared.host.deadlines import DeadlineProtocol

    settings = Settings.from_env()
    level = settings.log_level
    configure_logging(level, settings.log_format)
    config = uvicorn.Config(
        "asgi:app",
        host=args.host,
        port=args.port,
        workers=workers,
        log_level=level.lower(),
        access_log=False,
        # Applied by uvicorn in every worker process; its own records go through it too.
        log_config=logging_config(level, settings.log_format),
        timeout_graceful_shutdown=10,
        http=DeadlineProtocol,  # slow clients: closed when a request takes too long to arrive
        limit_concurrency=settings.max_connections,
        # The gateway reads X-Forwarded-For itself, from TOLLGATE_TRUSTED_PROXIES only; uvicorn's
        # own reading would let any local caller pose as another address.
        proxy_headers=False,
    )
    config.request_deadline = settings.request_deadline_seconds  # type: ignore[attr-defined]
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    config = _uvicorn_config(args, args.workers)
    if args.workers > 1:  # uvicorn's supervisor: one process per worker on a shared socket
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        _run(uvicorn.Server(config).serve())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    _run(_dev_server(args))
    return 0


async def _dev_server(args: argparse.Namespace) -> None:
    import uvicorn

    settings = Settings.from_env()
    runner = None
    if not (settings.config_path or settings.config_json):
        runner = await _start_simulator(settings.simulator_url)
    store = store_from_settings(settings)
    try:
        key = await issue_fresh_key(store, DEMO_SYSTEM)
        probe_key = await issue_fresh_key(store, PROBE_SYSTEM)
    finally:
        await store.aclose()
    # The scheduled probe times this very gateway, with a key of its own.
    os.environ["TOLLGATE_SECRET_PROBE_GATEWAY_KEY"] = probe_key
    os.environ.setdefault("TOLLGATE_PROBE_GATEWAY_URL", f"http://{args.host}:{args.port}")
    print(f"Tollgate on http://{args.host}:{args.port}  (registry: {settings.registry})")
    print(f"Demo system '{DEMO_SYSTEM}', key (shown once): {key}", flush=True)
    try:
        await uvicorn.Server(_uvicorn_config(args)).serve()
    finally:
        if runner is not None:
            await runner.cleanup()


async def _start_simulator(url: str) -> Any:
    from shared.simulator.app import start_simulator
    from shared.simulator.config import SimulatorConfig

    key = secrets.token_urlsafe(24)
    os.environ[f"TOLLGATE_SECRET_{SIMULATOR_KEY_SECRET.upper().replace('-', '_')}"] = key
    parsed = urlparse(url)
    runner, _ = await start_simulator(
        SimulatorConfig(api_keys={key}), host=parsed.hostname or "127.0.0.1", port=parsed.port or 0
    )
    print(f"Upstream simulator on {url}")
    return runner


async def issue_fresh_key(store: RegistryStore, system_id: str) -> str:
    """Make sure the system exists, retire the keys earlier runs issued and issue a new one."""
    document, _ = await admin.read_document(store)
    if system_id not in document["systems"]:
        await admin.edit(store, admin.create_system(system_id, RUN_LABEL, [ALL_MODELS]))
    document, _ = await admin.read_document(store)
    for key_id, record in document["systems"][system_id].get("keys", {}).items():
        if record.get("label") == RUN_LABEL and not record.get("revoked"):
            await admin.edit(store, admin.revoke_key(key_id))
    new, change = admin.add_key(system_id, RUN_LABEL)
    await admin.edit(store, change)
    return new.key


def cmd_simulator(args: argparse.Namespace) -> int:
    from shared.simulator.__main__ import main as simulator_main

    simulator_main(["--host", args.host, "--port", str(args.port), "--key", args.key])
    return 0
