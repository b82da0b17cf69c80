"""`GET /metrics`: the gateway's metrics as Prometheus text (the OpenTelemetry Prometheus
exporter's), when TOLLGATE_PROMETHEUS is on, for its operators only (admin_access). Labels
never hold a request id, a key id or text."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from shared.errors import GatewayError
from shared.http.admin_access import operator_gateway
from shared.http.inbound import request_id_of


async def prometheus_metrics(request: Request) -> Response:
    request_id = request_id_of(request)
    try:
        await operator_gateway(
            request,
            lambda settings: settings.prometheus,
            "Metrics are not served here (TOLLGATE_PROMETHEUS).",
        )
    except GatewayError as exc:
        return exc.to_response({"x-request-id": request_id})
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return Response(
        generate_latest(),
        media_type=CONTENT_TYPE_LATEST,
        headers={"cache-control": "no-store", "x-request-id": request_id},
    )
