"""The ASGI app uvicorn serves locally, in CI and on premises: function_app.py's own routes."""

from pathlib import Path

import function_app
from shared.gateway import close_gateway, start_gateway
from shared.host.asgi import build_asgi_app
from shared.http.handlers import fallback

app = build_asgi_app(
    function_app.app,
    Path(__file__).with_name("host.json"),
    on_startup=start_gateway,
    on_shutdown=close_gateway,
    unrouted=fallback,
)
