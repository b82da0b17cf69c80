"""`/status` (issue #21): the operators' page after known traffic, rendered in headless Chromium
(Debian's `chromium`, as tests/test_report_page.py runs it): each system's requests, errors,
tokens and cost today, its limits' live counters in Redis, each deployment's breaker and error
rate, and the latest probe run's chart; never a prompt, a key or an upstream's URL. Open to the
metrics networks, the admin key or an Entra ID token with the admin role; off unless asked for.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import redis
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.probe.latency_csv import to_csv
from shared.storage.documents import run_blob_name
from tests.conftest import SIM_KEY, Live, new_system
from tests.support.cluster import REDIS_URL, day_used
from tests.support.jwks_server import JwksServer
from tests.support.keyvault_standin import write_self_signed_cert
from tests.support.rig import Rig, gateway_rig, priced_config
from tests.test_report_chart import fast_and_thin
from tests.test_report_page import chromium

ADMIN_KEY = "admin-key-status-0123456789abcdef"
CANARY = "canary-prompt-7f3a"
PRICE = {"prompt_per_million": 2.5, "completion_per_million": 10}
RUN = "20250102T030405Z-5a7e11"
EARLIER_RUN = "20250102T010101Z-000000"
TENANT = "6f1c3a2b-0000-4000-8000-00000000bbbb"
AUDIENCE = "api://tollgate-status"


class Tables(HTMLParser):
    """A DOM's tables, each a list of rows of cell texts, and all its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self.tables:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, first_header: str, second_header: str) -> list[list[str]]:
        (found,) = [t for t in self.tables if t and t[0][:2] == [first_header, second_header]]
        return found[1:]

    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def rendered(page: str, tmp_path: Path) -> Tables:
    source = tmp_path / "status.html"
    source.write_text(page, encoding="utf-8")
    dom = chromium("--dump-dom", source.as_uri(), profile=tmp_path / "profile").stdout
    parsed = Tables()
    parsed.feed(dom)
    assert parsed.tables, dom[:500]
    return parsed


def chat(rig: Rig, key: str) -> requests.Response:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": f"say hi {CANARY}"}],
        "max_tokens": 16,
    }
    url = f"{rig.gateway.url}/gateway/chat/completions/gpt-4o"
    return requests.post(url, headers={"api-key": key}, json=body, timeout=30)


def records_of(rig: Rig, system: str, count: int) -> list[dict[str, Any]]:
    """The system's usage records once `count` of them are flushed (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [r for r in rig.records() if r["system"] == system]
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} usage records for {system}")


def probe_results(folder: Path) -> Path:
    """Two of today's probe runs in a results folder, RUN the later one."""
    today = datetime.now(UTC).date()
    for run, rows in ((EARLIER_RUN, fast_and_thin()[:10]), (RUN, fast_and_thin())):
        path = folder / run_blob_name(today, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_csv(rows), encoding="utf-8")
    return folder


def test_the_page_shows_todays_traffic_limits_deployments_and_the_probe(
    live: Live, tmp_path: Path
) -> None:
    redis.Redis.from_url(REDIS_URL).ping()  # no Redis is a failure here, never a skip
    deployment = f"status-{uuid.uuid4().hex[:8]}"  # a breaker of its own in the shared Redis
    config = priced_config(live.simulator.url, PRICE, deployment)
    settings = {
        "TOLLGATE_STATUS_PAGE": "true",
        "TOLLGATE_REDIS_URL": REDIS_URL,
        "TOLLGATE_CONFIG_JSON": json.dumps(config),
        "TOLLGATE_PROBE_RESULTS": str(probe_results(tmp_path / "probe-results")),
    }
    system = f"status-{uuid.uuid4().hex[:8]}"  # its own counters in the shared Redis
    registry = {"TOLLGATE_REGISTRY": str(tmp_path / "systems.json")}  # the rig's, read at start
    key = new_system(registry, system, limits={"rpm": 100, "tokens_per_day": 1_000_000})
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        answers = [chat(rig, key) for _ in range(3)]
        assert all(a.status_code == 200 for a in answers), answers[0].text
        rig.fault(status=500, deployment="gpt-4o", count=1)
        failed = chat(rig, key)
        assert failed.status_code >= 500
        records = records_of(rig, system, 4)
        page = requests.get(f"{rig.gateway.url}/status", timeout=10)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    tokens = sum(a.json()["usage"]["total_tokens"] for a in answers)
    cost = sum(r["cost"] for r in records)
    assert tokens > 0 and cost > 0

    shown = rendered(page.text, tmp_path)
    systems = {row[0]: row for row in shown.table("system", "requests")}
    assert systems[system][1:5] == ["4", "1", "25.0%", f"{tokens:,}"]
    assert float(systems[system][5]) == round(cost, 4)
    assert systems["app"][1:3] == ["0", "0"]  # the rig's own system, registered and idle

    limits = {(row[0], row[1], row[2]): row[3:] for row in shown.table("system", "scope")}
    assert limits[(system, "system", "requests this minute")][:2] == ["4", "100"]
    # The quota keeps the failed request's reservation: its upstream reported no usage.
    quota = day_used(system)
    assert quota > tokens
    assert limits[(system, "system", "tokens today")][:2] == [f"{quota:,}", "1,000,000"]

    (row,) = [r for r in shown.table("deployment", "kind") if r[0] == deployment]
    assert row[1:3] == ["azure", "gpt-4o"]
    assert row[3:6] == ["closed", "none", "1"]  # one failure since the last success
    assert row[6:] == ["4", "1", "25.0%"]

    text = shown.all_text()
    assert "as of the last flush" in text
    assert f"Run {run_blob_name(datetime.now(UTC).date(), RUN)}: 136 requests (7 failed)" in text
    assert "+0.25 ms (1.14x direct)" in text  # the probe chart's overhead
    for outside in ("<script", "<img", "<link", "src=", "href=", "url("):
        assert outside not in page.text, outside
    for secret in (CANARY, key, rig.key, SIM_KEY, live.simulator.url, "127.0.0.1", "sha256:"):
        assert secret not in page.text, secret


def test_the_page_is_for_the_metrics_networks_or_the_admin_key(live: Live, tmp_path: Path) -> None:
    settings = {
        "TOLLGATE_STATUS_PAGE": "true",
        "TOLLGATE_METRICS_NETWORKS": "10.0.0.0/8",
        "TOLLGATE_ADMIN_KEY_SECRET": "admin-key",
        "TOLLGATE_SECRET_ADMIN_KEY": ADMIN_KEY,
        "TOLLGATE_PROBE_RESULTS": str(tmp_path / "no-probe-results"),
    }
    with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
        url = f"{rig.gateway.url}/status"
        refused = requests.get(url, timeout=10)
        with_gateway_key = requests.get(
            url, headers={"authorization": f"Bearer {rig.key}"}, timeout=10
        )
        admitted = requests.get(url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "admin_only"
    assert with_gateway_key.status_code == 403
    assert admitted.status_code == 200
    assert "No probe results yet." in admitted.text
    assert "the counters are per instance and are not shown here" in admitted.text  # no Redis
    assert ADMIN_KEY not in admitted.text


def test_the_page_is_off_unless_asked_for(live: Live, tmp_path: Path) -> None:
    with gateway_rig(tmp_path, {}, simulator=live.simulator) as rig:
        answer = requests.get(f"{rig.gateway.url}/status", timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def admin_token(key: rsa.RSAPrivateKey, roles: list[str]) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "aud": AUDIENCE,
        "tid": TENANT,
        "azp": str(uuid.uuid4()),
        "oid": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "roles": roles,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


async def test_an_entra_token_with_the_admin_role_opens_the_page(
    live: Live, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    cert, cert_key = write_self_signed_cert(tmp_path)
    server = JwksServer([{**jwk, "kid": "k1", "use": "sig"}], tls=(cert, cert_key))
    await server.start()
    settings = {
        "TOLLGATE_STATUS_PAGE": "true",
        "TOLLGATE_METRICS_NETWORKS": "10.0.0.0/8",
        "TOLLGATE_ENTRA_TENANT_ID": TENANT,
        "TOLLGATE_ENTRA_AUDIENCES": AUDIENCE,
        "TOLLGATE_ENTRA_JWKS_URL": server.url,
        "SSL_CERT_FILE": str(cert),  # trust the local key server; verification stays on
        "TOLLGATE_PROBE_RESULTS": str(tmp_path / "no-probe-results"),
    }
    try:
        with gateway_rig(tmp_path, settings, simulator=live.simulator) as rig:
            statuses = {}
            async with aiohttp.ClientSession() as session:
                for roles in (["Tollgate.Admin"], ["Tollgate.Call"], []):
                    headers = {"authorization": f"Bearer {admin_token(key, roles)}"}
                    async with session.get(f"{rig.gateway.url}/status", headers=headers) as resp:
                        statuses[",".join(roles)] = resp.status
    finally:
        await server.stop()
    assert statuses == {"Tollgate.Admin": 200, "Tollgate.Call": 403, "": 403}
    assert server.fetches >= 1  # the tokens were checked against the tenant's keys
