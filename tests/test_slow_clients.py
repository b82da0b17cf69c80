"""The local host closes connections whose request does not arrive in time (slowloris), and
bounds how many it holds; prompt clients are served as before."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Live
from tests.support.processes import Service
from tests.support.rig import Rig, gateway_rig

DEADLINE = 1.0
HEAD = (
    b"POST /gateway/chat/completions/gpt-4o HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 60\r\n"
)


@pytest.fixture(scope="module")
def host(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    settings = {
        "TOLLGATE_REQUEST_DEADLINE_SECONDS": str(DEADLINE),
        "TOLLGATE_MAX_CONNECTIONS": "20",
    }
    work = tmp_path_factory.mktemp("slow-clients")
    with gateway_rig(work, settings, simulator=live.simulator) as rig:
        yield rig


def connect(service: Service) -> socket.socket:
    host, port = service.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> bool:
    """Sends `trickle` a byte every 0.2 s; True when the server closes the connection first."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.2)
    for index in range(10_000):
        if time.monotonic() > deadline:
            return False
        try:
            if index < len(trickle):
                sock.sendall(trickle[index : index + 1])
            if sock.recv(4096) == b"":
                return True
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def test_a_connection_that_sends_nothing_is_closed(host: Rig) -> None:
    with connect(host.gateway) as sock:
        assert closed_within(sock, DEADLINE * 4)


def test_a_head_sent_a_byte_at_a_time_is_cut_off(host: Rig) -> None:
    with connect(host.gateway) as sock:
        assert closed_within(sock, DEADLINE * 4, trickle=HEAD + b"api-key: x\r\n\r\n")


def test_a_body_sent_a_byte_at_a_time_is_cut_off(host: Rig) -> None:
    gateway, key = host.gateway, host.key
    with connect(gateway) as sock:
        sock.sendall(HEAD + f"api-key: {key}\r\n\r\n".encode())
        assert closed_within(sock, DEADLINE * 4, trickle=b'{"messages": [' + b" " * 40)
    host.wait_for_record(lambda r: r["error_code"] == "client_disconnected")
    (record,) = [r for r in host.records() if r["error_code"] == "client_disconnected"]  # not 500
    assert record["status"] == 499 and record["client_disconnected"] is True
    assert "unhandled" not in gateway.log_text()


def test_many_slow_connections_leave_room_for_prompt_ones(host: Rig) -> None:
    gateway, key = host.gateway, host.key
    slow = [connect(gateway) for _ in range(15)]
    try:
        for sock in slow:
            sock.sendall(HEAD[:20])
        url = f"{gateway.url}/gateway/chat/completions/gpt-4o"
        body = {"messages": [{"role": "user", "content": "hi"}]}
        response = requests.post(url, headers={"api-key": key}, json=body, timeout=10)
        assert response.status_code == 200
        assert all(closed_within(sock, DEADLINE * 4) for sock in slow)
    finally:
        for sock in slow:
            sock.close()


def test_a_prompt_keep_alive_client_is_served_repeatedly(host: Rig) -> None:
    gateway, key = host.gateway, host.key
    url = f"{gateway.url}/gateway/chat/completions/gpt-4o"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    with requests.Session() as session:
        for _ in range(3):
            response = session.post(url, headers={"api-key": key}, json=body, timeout=10)
            assert response.status_code == 200
            time.sleep(DEADLINE * 0.6)  # idle between requests is keep-alive's, not this rule's


def test_past_the_connection_limit_a_request_gets_an_openai_503(host: Rig) -> None:
    gateway, key = host.gateway, host.key
    url = f"{gateway.url}/gateway/chat/completions/gpt-4o"
    body = {"messages": [{"role": "user", "content": "hi"}]}
    idle = [connect(gateway) for _ in range(20)]  # the limit: 20
    try:
        time.sleep(0.2)
        response = requests.post(url, headers={"api-key": key}, json=body, timeout=10)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "too_many_connections"
        assert response.headers["retry-after"] == "1"
        assert all(closed_within(sock, DEADLINE * 4) for sock in idle)
    finally:
        for sock in idle:
            sock.close()
    assert requests.post(url, headers={"api-key": key}, json=body, timeout=10).status_code == 200
