"""``python -m shared.simulator``: run the simulator standalone."""

from __future__ import annotations

import argparse

from aiohttp import web

from .app import create_app
from .config import SimulatorConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m shared.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7072)
    parser.add_argument(
        "--key", action="append", dest="keys", help="accepted API key (repeatable; default sim-key)"
    )
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ttft-ms", type=float, default=0.0)
    parser.add_argument("--tokens-per-second", type=float, default=0.0)
    parser.add_argument("--completion-tokens", type=int, default=16)
    parser.add_argument("--background-ms", type=float, default=0.0)
    parser.add_argument("--batch-ms", type=float, default=SimulatorConfig.batch_ms)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = SimulatorConfig(
        api_keys=set(args.keys or ["sim-key"]),
        latency_ms=args.latency_ms,
        ttft_ms=args.ttft_ms,
        tokens_per_second=args.tokens_per_second,
        completion_tokens=args.completion_tokens,
        background_ms=args.background_ms,
        batch_ms=args.batch_ms,
    )
    web.run_app(
        create_app(config),
        host=args.host,
        port=args.port,
        handler_cancellation=True,
        access_log=None,
        shutdown_timeout=1.0,
    )


if __name__ == "__main__":
    main()
