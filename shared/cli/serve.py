"""`tollgate serve`, `tollgate run` and `tollgate simulator`: run the gateway locally."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from shared.auth.upstream_credentials import DEFAULT_SIMULATOR_KEY, SIMULATOR_KEY_SECRET
from shared.host.log_format import configure_logging, logging_config
from shared.registry import admin
from shared.registry.store import RegistryStore, store_from_settings
from shared.registry.systems import ALL_MODELS, Registry
from shared.settings import Settings

DEMO_SYSTEM = "0003R3"  # the seed's system: its snippets work as they are
# Latency like a real deployment's, so that demo figures and the probe mean something: 30 ms
# to answer, 250 ms to the first token, 60 tokens a second.
DEMO_LATENCY = (30.0, 250.0, 60.0)
PROBE_SYSTEM = "latency-probe"
RUN_LABEL = "make run"


def add_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="serve the gateway (function_app.py) with uvicorn")
    _listen_options(serve)
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes on one socket (default 1)"
    )
    serve.set_defaults(handler=cmd_serve)
    run = commands.add_parser("run", help="gateway + built-in simulator + a demo system and key")
    _listen_options(run)
    run.set_defaults(handler=cmd_run)
    sim = commands.add_parser("simulator", help="run the upstream simulator alone")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sim.add_argument("--port", type=int, default=7072, help="port to listen on (default 7072)")
    sim.add_argument(
        "--key",
        default=os.environ.get("TOLLGATE_SECRET_SIMULATOR_KEY") or DEFAULT_SIMULATOR_KEY,
        help="the key it accepts (default: TOLLGATE_SECRET_SIMULATOR_KEY, else sim-key)",
    )
    sim.set_defaults(handler=cmd_simulator)


def _listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=7071, help="port to listen on (default 7071)")


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
    try:
        _run(_dev_server(args))
    except PortTaken as exc:
        print(f"tollgate run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl+C: a normal way to stop it
        pass
    return 0


class PortTaken(Exception):
    """An address `tollgate run` needs is in use: nothing has been changed."""


def check_free(addresses: list[tuple[str, int]]) -> None:
    """Refuse before anything else happens (the registry untouched) if an address is taken."""
    for host, port in addresses:
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                raise PortTaken(
                    f"{host}:{port} is already in use (is another `make run` or `tollgate serve` "
                    "running? stop it, or choose another --port or TOLLGATE_SIMULATOR_URL)."
                ) from None


async def _dev_server(args: argparse.Namespace) -> None:
    import uvicorn

    settings = Settings.from_env()
    embedded = not (settings.config_path or settings.config_json)
    simulator = urlparse(settings.simulator_url)
    sim_address = (simulator.hostname or "127.0.0.1", simulator.port or 80)
    check_free([(args.host, args.port), *([sim_address] if embedded else [])])
    folder = local_folder(settings)
    runner = await _start_simulator(settings.simulator_url, folder) if embedded else None
    store = store_from_settings(settings)
    try:
        key = await lasting_key(store, DEMO_SYSTEM, folder / "demo-key")
        probe_key = await lasting_key(store, PROBE_SYSTEM, folder / "probe-key")
    finally:
        await store.aclose()
    # On a laptop a registry change (a new key, a policy) should show within seconds.
    os.environ.setdefault("TOLLGATE_REGISTRY_REFRESH_SECONDS", "2")
    # The scheduled probe times this very gateway, with a key of its own.
    os.environ["TOLLGATE_SECRET_PROBE_GATEWAY_KEY"] = probe_key
    os.environ.setdefault("TOLLGATE_PROBE_GATEWAY_URL", f"http://{args.host}:{args.port}")
    print(f"Tollgate on http://{args.host}:{args.port}  (registry: {settings.registry})")
    print(f"Demo system '{DEMO_SYSTEM}' (the seed's), key: {key}")
    print(f"  (kept in {folder / 'demo-key'} and shown on every start)", flush=True)
    try:
        await uvicorn.Server(_uvicorn_config(args)).serve()
    finally:
        if runner is not None:
            await runner.cleanup()


def local_folder(settings: Settings) -> Path:
    """Where `tollgate run` keeps its own keys: beside a local registry, else .tollgate/."""
    registry = settings.registry
    folder = Path(registry).parent if "://" not in registry else Path(".tollgate")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _start_simulator(url: str, folder: Path) -> Any:
    from shared.simulator.app import start_simulator
    from shared.simulator.config import SimulatorConfig

    key = kept_secret(folder / "simulator-key", lambda: secrets.token_urlsafe(24))
    os.environ[f"TOLLGATE_SECRET_{SIMULATOR_KEY_SECRET.upper().replace('-', '_')}"] = key
    parsed = urlparse(url)
    latency, first_token, rate = DEMO_LATENCY
    config = SimulatorConfig(
        api_keys={key}, latency_ms=latency, ttft_ms=first_token, tokens_per_second=rate
    )
    runner, _ = await start_simulator(
        config, host=parsed.hostname or "127.0.0.1", port=parsed.port or 0
    )
    print(f"Upstream simulator on {url}  (key: {key}, also in {folder / 'simulator-key'})")
    return runner


def kept_secret(path: Path, make: Callable[[], str]) -> str:
    """A value kept across runs in a file only its owner may read."""
    value = _read_kept(path)
    if not value:
        value = make()
        _keep(path, value)
    return value


def _read_kept(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip() if path.is_file() else ""


def _keep(path: Path, value: str) -> None:
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)


async def lasting_key(store: RegistryStore, system_id: str, path: Path) -> str:
    """The key `tollgate run` keeps for `system_id` across restarts: the one in `path` while
    the registry still accepts it, else a new one (earlier runs' keys revoked)."""
    document, _ = await admin.read_document(store)
    if system_id not in document["systems"]:
        await admin.edit(store, admin.create_system(system_id, RUN_LABEL, [ALL_MODELS]))
        document, _ = await admin.read_document(store)
    kept = _read_kept(path)
    caller = Registry.parse(document).authenticate(kept) if kept else None
    if caller is not None and caller.system.id == system_id:
        return kept
    for key_id, record in document["systems"][system_id].get("keys", {}).items():
        if record.get("label") == RUN_LABEL and not record.get("revoked"):
            await admin.edit(store, admin.revoke_key(key_id))
    new, change = admin.add_key(system_id, RUN_LABEL)
    await admin.edit(store, change)
    _keep(path, new.key)
    return new.key


def cmd_simulator(args: argparse.Namespace) -> int:
    from shared.simulator.__main__ import main as simulator_main

    simulator_main(["--host", args.host, "--port", str(args.port), "--key", args.key])
    return 0
