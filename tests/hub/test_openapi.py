"""The API as an outsider meets it: `/schema/openapi.json` names every answer an operation gives,
and Schemathesis, generating inputs from that document, finds no server error and no answer the
document does not list, anonymously and signed in.

The hub runs as `hub serve` in a process of its own (the fuzzer's requests are blocking), on its
embedded defaults with the rate limits raised so the run is not only 429s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD, free_port, unique_email

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
# Operations that end the fuzzer's own session or switch the API it tests off; they get a run
# of their own with an organization of their own.
SELF_ENDING = ("/api/auth/logout", "/api/users/me/password", "/api/settings/modules")


@dataclass
class Served:
    url: str
    tokens: list[str]
    report: Path


def _register(url: str) -> str:
    answer = httpx.post(
        f"{url}/api/auth/register",
        json={
            "organization_name": "Fuzz",
            "full_name": "Amal",
            "email": unique_email(),
            "password": PASSWORD,
        },
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["access_token"])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    data = tmp_path
    port = free_port()
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("HUB_", "DATABASE_", "REDIS_"))},
        "HUB_DATA_DIR": str(data),
        "HUB_API_RATE_LIMIT": "1000000",
        "HUB_LOGIN_FAILURES_PER_ADDRESS": "1000000",
        "HUB_INBOUND_FAILURES_PER_ADDRESS": "1000000",
        "HUB_LOG_LEVEL": "WARNING",
    }
    log = (data / "hub.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "hub.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "hub serve did not start"
            assert process.poll() is None, (data / "hub.log").read_text()
            time.sleep(0.2)
        yield Served(url=url, tokens=[_register(url), _register(url)], report=data)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def fuzz(served: Served, name: str, *options: str) -> None:
    """One Schemathesis run: no 5xx, no status the document does not list."""
    command = [
        str(SCHEMATHESIS),
        "run",
        f"{served.url}/schema/openapi.json",
        "--checks",
        "not_a_server_error,status_code_conformance",
        "--phases",
        "examples,fuzzing",
        "--max-examples",
        "4",
        "--seed",
        "20261201",
        "--workers",
        "2",
        "--no-color",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        *options,
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=served.report)
    (served.report / f"{name}.txt").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]


def check_the_document(served: Served) -> None:
    """The document names the error answers, the signed posts and who needs a token."""
    document = httpx.get(f"{served.url}/schema/openapi.json", timeout=30).json()
    assert set(document["components"]["schemas"]["Error"]["properties"]) == {
        "status_code",
        "detail",
        "errors",
    }
    me = document["paths"]["/api/users/me"]["get"]
    assert {"400", "401", "429", "503"} <= set(me["responses"])
    assert me["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    register = document["paths"]["/api/auth/register"]["post"]
    assert register["security"] == []
    assert "401" not in register["responses"]
    inbound = document["paths"]["/api/channels/{channel_id}/inbound"]["post"]
    assert inbound["security"] == []
    assert any(
        p["name"] == "X-Hub-Signature" and p["in"] == "header" and p["required"]
        for p in inbound["parameters"]
    )
    body = inbound["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ApiInbound"}
    assert "from" in document["components"]["schemas"]["ApiInbound"]["properties"]
    assert {"401", "404", "408", "413", "415", "429", "503"} <= set(inbound["responses"])
    receipts = document["paths"]["/api/channels/{channel_id}/receipts"]["post"]
    assert receipts["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ApiReceipt"
    }
    assert {"403", "404", "409"} <= set(document["paths"]["/api/tickets/{ticket_id}"]["patch"]["responses"])


@pytest.mark.slow
def test_no_input_breaks_the_api(served: Served) -> None:
    """The document first; then a stranger, a signed-in admin, and the operations that end the
    fuzzer's own session (with an organization of their own), in one test: the hub is started
    once for all of it."""
    check_the_document(served)
    fuzz(served, "anonymous")
    excluded = [option for path in SELF_ENDING for option in ("--exclude-path", path)]
    fuzz(served, "admin", "--header", f"Authorization: Bearer {served.tokens[0]}", *excluded)
    included = [option for path in SELF_ENDING for option in ("--include-path", path)]
    fuzz(served, "ending", "--header", f"Authorization: Bearer {served.tokens[1]}", *included)
