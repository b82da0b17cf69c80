"""Budgets in money (issue #19): three gateways sharing Redis hold a system to its daily budget
under concurrent load, streamed and not; what the counter says was spent is exactly the sum of
the usage records' costs; the next request is refused with `budget_exceeded`; the operator's
webhook hears each threshold crossed once, without a word of the prompts."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
import requests

from tests.support.cluster import REDIS_URL, Cluster, cluster_of, spread
from tests.support.processes import tollgate

PRICE = {"prompt_per_million": 2.5, "completion_per_million": 10}
PROMPT = "zebra crossing at the toll gate"
BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": PROMPT}],
}
UNITS = 10**8  # cost units per currency unit, as the counters hold money


class Receiver(BaseHTTPRequestHandler):
    posts: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        Receiver.posts.append(body)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Receiver.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/budget"
    finally:
        server.shutdown()
        server.server_close()


def priced(simulator_url: str) -> dict[str, str]:
    upstream = {
        "type": "azure",
        "endpoint": simulator_url,
        "deployment": "gpt-4o",
        "key_secret": "simulator-key",
    }
    models = {"gpt-4o": {"upstream": "east", "price": PRICE}}
    config = {"upstreams": {"east": upstream}, "models": models, "currency": "USD"}
    return {"TOLLGATE_CONFIG_JSON": json.dumps(config), "TOLLGATE_USAGE_FLUSH_SECONDS": "0.1"}


def spent_units(system: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"tg:{{{system}}}:s:bday:*"))
    assert len(keys) == 1
    return int(client.get(keys[0]) or 0)


def records(cluster: Cluster, system: str) -> list[dict[str, Any]]:
    paths = (cluster.work / "usage").rglob("*.jsonl")
    found = [json.loads(line) for path in paths for line in path.read_text().splitlines()]
    return [r for r in found if r["system"] == system and r["operation"] == "chat"]


def one_cost(cluster: Cluster) -> float:
    """What one such request costs, asked of a system without a budget."""
    _, key = cluster.system(rpm=1000)
    answer = requests.post(
        f"{cluster.gateways[0].url}/v1/chat/completions",
        headers={"api-key": key},
        json=BODY,
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return float(answer.headers["x-tollgate-cost"].split()[0])


def test_a_daily_budget_holds_across_three_gateways(tmp_path: Path, webhook: str) -> None:
    def settings(simulator_url: str) -> dict[str, str]:
        return {**priced(simulator_url), "TOLLGATE_BUDGET_ALERT_URL": webhook}

    with cluster_of(tmp_path, 3, settings) as cluster:
        cost = one_cost(cluster)
        budget = round(20 * cost, 8)
        system, key = cluster.system(budget_per_day=budget)

        async def load() -> list[Any]:
            whole = spread(cluster, key, 30, "/v1/chat/completions", BODY)
            streamed = spread(cluster, key, 30, "/v1/chat/completions", {**BODY, "stream": True})
            both = await asyncio.gather(whole, streamed)
            return both[0] + both[1]

        answers = asyncio.run(load())
        statuses = [status for status, _, _ in answers]
        assert set(statuses) <= {200, 429}, statuses
        refused = [json.loads(body) for status, _, body in answers if status == 429]
        assert refused and all(r["error"]["code"] == "budget_exceeded" for r in refused)
        served = statuses.count(200)
        deadline = time.monotonic() + 10
        while len(records(cluster, system)) < served and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the last settlements
        costs = [r["cost"] for r in records(cluster, system) if r["status"] == 200]
        assert len(costs) == served
        spent = spent_units(system)
        assert spent == sum(round(c * UNITS) for c in costs)  # exactly what the records say
        worst = max(costs)  # one request's reservation error is under one request's cost
        assert spent <= round((budget + worst) * UNITS)
        assert served >= 19  # the budget was used, not refused early
        after = requests.post(
            f"{cluster.gateways[1].url}/v1/chat/completions",
            headers={"api-key": key},
            json=BODY,
            timeout=30,
        )
        assert after.status_code == 429
        error = after.json()["error"]
        assert error["code"] == "budget_exceeded" and "USD" in error["message"]
        assert float(after.headers["x-ratelimit-limit-budget-day"]) == budget
        assert float(after.headers["x-ratelimit-remaining-budget-day"]) <= cost
        _one_alert_per_threshold(system, budget)


def _one_alert_per_threshold(system: str, budget: float) -> None:
    deadline = time.monotonic() + 10
    while len(Receiver.posts) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # any duplicate would have come by now
    alerts = [json.loads(post) for post in Receiver.posts]
    assert sorted(a["threshold"] for a in alerts) == [0.5, 0.8, 1.0], alerts
    for alert in alerts:
        assert (alert["system"], alert["scope"], alert["period"]) == (system, "system", "day")
        assert alert["budget"] == budget and alert["currency"] == "USD"
        # 100%: spent, or a request refused because its worst case no longer fitted
        assert alert["spent"] >= alert["threshold"] * budget or alert["refused"]
    assert not any(PROMPT.encode() in post or b"zebra" in post for post in Receiver.posts)


def test_systems_spend_shows_the_live_counters(tmp_path: Path) -> None:
    with cluster_of(tmp_path, 1, priced) as cluster:
        system, key = cluster.system(budget_per_day=5, budget_per_month=50)
        answer = requests.post(
            f"{cluster.gateways[0].url}/v1/chat/completions",
            headers={"api-key": key},
            json=BODY,
            timeout=30,
        )
        cost = float(answer.headers["x-tollgate-cost"].split()[0])
        time.sleep(0.3)  # the settlement
        shown = tollgate("systems", "spend", system, "--json", env=cluster.env)
        assert shown.returncode == 0, shown.stderr
        rows = {r["period"]: r for r in json.loads(shown.stdout)["budgets"]}
        assert rows["day"]["spent"] == pytest.approx(cost, abs=1e-8)
        assert (rows["day"]["budget"], rows["month"]["budget"]) == (5, 50)
        assert rows["month"]["spent"] == pytest.approx(cost, abs=1e-8)
        table = tollgate("systems", "spend", env=cluster.env)
        assert system in table.stdout and "5.0000" in table.stdout
        without = {k: v for k, v in cluster.env.items() if k != "TOLLGATE_REDIS_URL"}
        assert tollgate("systems", "spend", system, env=without).returncode == 1
