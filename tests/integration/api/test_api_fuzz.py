"""A fuzz run over the OpenAPI schema finds no 5xx (PRODUCT.md, "Bad input").

Schemathesis generates requests for every operation of `/openapi.json` and sends them with a
valid token to a real `radiosilence serve` holding a synced mailbox, a webhook and drafts:
requests that fit the schema with random ids, the same aimed at the real rows, and requests
that break the schema. Every answer must be below 500. Deletions run last, so that the rows
are there for everything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from tests.conftest import TEST_SECRET_KEY
from tests.factories import ImapUser, make_user, now_utc, populate
from tests.support.processes import cli_env, run_cli, serving

pytestmark = pytest.mark.integration
EXAMPLES_PER_OPERATION = 25
POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Numbers no field can hold, written as JSON text (Python refuses to read or print an int of
# more than 4,300 digits; one just below that limit parses and must be refused all the same),
# and templates that cannot be bounded (issue 15, items 1 and 7).
HUGE_NUMBERS = ["9" * 5000, "9" * 4000, "-" + "9" * 4000, "1e400", "-1e400", "18446744073709551616"]
HOSTILE_TEMPLATES = [
    "{{ 9**64**64**64**64 }}",
    "{{ 9**64**64**64 }}",
    "{{ 'x' * 999999999 }}",
    "{{ " + " * ".join(["999999"] * 300) + " }}",
    "{{ " + "(" * 990 + "1" + ")" * 990 + " }}",
    "{{ step // 0 }}",
    "{{ (subject ~ subject)|truncate(99999999999) }}",
]


def hostile_requests(
    openapi: dict[str, Any], real: dict[str, int]
) -> Iterator[tuple[str, str, dict[str, str], str | None]]:
    """(method, path, query, JSON text) for every operation: each integer or number in the
    path, the query and the top level of the JSON body replaced by each of HUGE_NUMBERS, the
    other path parameters aimed at real rows; and the templates above for draft-templates."""
    schemas = openapi["components"]["schemas"]
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            params = operation.get("parameters", [])
            numeric = [p for p in params if _numeric(p.get("schema", {}))]
            body_ref = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref", "")
            )
            body_schema = schemas.get(body_ref.rsplit("/", 1)[-1], {}) if body_ref else {}
            body_numbers = [n for n, f in body_schema.get("properties", {}).items() if _numeric(f)]
            base = {p["name"]: str(real[p["name"]]) for p in params if p["in"] == "path"}
            for number in HUGE_NUMBERS:
                for param in numeric:
                    names = {**base, param["name"]: number} if param["in"] == "path" else base
                    query = {param["name"]: number} if param["in"] == "query" else {}
                    yield method, path.format(**names), query, "{}" if body_ref else None
                for field in body_numbers:
                    yield method, path.format(**base), {}, f'{{"{field}": {number}}}'
            if path.endswith("/draft-templates") and method == "put":
                for template in HOSTILE_TEMPLATES:
                    body = json.dumps({"first": ["Fine?", template], "last": [template]})
                    yield method, path.format(**base), {}, body


def _numeric(schema: dict[str, Any]) -> bool:
    kinds = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
    return "integer" in kinds or "number" in kinds


def fuzz(
    operation: schemathesis.APIOperation,
    send: Callable[[schemathesis.Case], None],
    mode: schemathesis.GenerationMode,
    path_parameters: dict[str, int] | None,
) -> None:
    strategy = operation.as_strategy(mode, path_parameters=path_parameters)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,  # the same requests on every run: a failure can be replayed
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        send(data.draw(strategy))

    run()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_no_request_gets_a_server_error(
    backend: str, imap_user: ImapUser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'rs.db'}"
    else:  # PostgreSQL refuses what SQLite takes (NUL characters in text, for one)
        database_url = request.getfixturevalue("database_url_pg")
    env = cli_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        workers_enabled="false",
        imap_timeout_seconds="3",
        webhook_allow_private="true",
    )
    populate(imap_user, now_utc())
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    token = make_user("rep@seller.example", env, tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    with serving(env, tmp_path, tmp_path / "serve.log") as base:
        with httpx.Client(base_url=base, headers=auth, timeout=60) as api:
            created = api.post("/api/v1/mailboxes", json=imap_user.mailbox_body())
            assert created.status_code == 201, created.text
            mailbox_id = created.json()["id"]
            synced = api.post(f"/api/v1/mailboxes/{mailbox_id}/sync", params={"wait": "true"})
            assert synced.status_code == 200, synced.text
            hook = api.post("/api/v1/webhooks", json={"url": base + "/nowhere"})
            assert hook.status_code == 201, hook.text
            ping = api.post(f"/api/v1/webhooks/{hook.json()['id']}/test")
            assert ping.status_code == 202, ping.text
            (draft, *_) = api.get("/api/v1/drafts").json()["items"]
            (thread, *_) = api.get("/api/v1/threads").json()["items"]
            # A token of its own to aim at, so that revoking it spares the one the run uses.
            spare = api.post("/api/v1/tokens", json={"name": "fuzz target"})
            assert spare.status_code == 201, spare.text
            (target,) = [
                t for t in api.get("/api/v1/tokens").json()["items"] if t["name"] == "fuzz target"
            ]
        real = {
            "mailbox_id": mailbox_id,
            "thread_id": thread["id"],
            "draft_id": draft["id"],
            "webhook_id": hook.json()["id"],
            "delivery_id": ping.json()["id"],
            "token_id": target["id"],
        }

        schema = schemathesis.openapi.from_url(base + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 30  # the whole API, not an empty schema
        operations.sort(key=lambda op: op.method.upper() == "DELETE")

        def send(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers=auth, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{response.status_code} {case.method} {case.formatted_path} "
                    f"query={case.query} body={case.body!r}: {response.text[:200]}"
                )

        broken = 0  # operations that got schema-breaking requests
        openapi = httpx.get(base + "/openapi.json").json()
        hostile = 0
        with httpx.Client(base_url=base, headers=auth, timeout=30) as api:
            for method, path, query, body in hostile_requests(openapi, real):
                hostile += 1
                answer = api.request(
                    method,
                    path,
                    params=query,
                    content=body,
                    headers={"Content-Type": "application/json"} if body else {},
                )
                if answer.status_code >= 500:
                    failures.append(
                        f"{answer.status_code} {method.upper()} {path[:80]} "
                        f"query={str(query)[:40]} body={str(body)[:80]}: {answer.text[:200]}"
                    )
                elif path.endswith("/draft-templates") and method == "put":
                    assert answer.status_code == 422, answer.text

        for operation in operations:
            names = [p.name for p in operation.path_parameters]
            aimed = {name: real[name] for name in names} if names else None
            assert not names or set(names) <= real.keys(), operation.label
            fuzz(operation, send, POSITIVE, None)
            if aimed:
                fuzz(operation, send, POSITIVE, aimed)
            try:
                fuzz(operation, send, NEGATIVE, aimed)
                broken += 1
            except Unsatisfiable:  # nothing in its schema can be broken (no body, no typed query)
                pass
        log = (tmp_path / "serve.log").read_text()

    assert not failures, "\n".join(failures[:20])
    assert broken > 20, broken
    assert hostile > 200, hostile
    assert imap_user.password not in log
