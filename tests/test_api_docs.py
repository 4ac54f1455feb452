"""The API descriptions and the headers every answer carries, against a real server.

- `/openapi.json` lists every status each route answers, with its body schema; the
  requests below make the real server give those answers, and the conformance plugin
  (tests/openapi_conformance.py) checks each against the document, as it does for every
  other test.
- `X-Content-Type-Options: nosniff` everywhere, `Cache-Control: no-store` on answers to
  credentialed requests, a cacheable key set.
- `/asyncapi.json` is a valid AsyncAPI 3.0 document (the official JSON Schema, pinned in
  tests/schemas/) that names every close and message the code can produce; real frames
  from a real socket match its payload schemas.
"""

import asyncio
import json
import re
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import websockets
from clients import bearer, cookie
from conftest import USER_PASSWORD
from jsonschema import Draft7Validator, Draft202012Validator
from openapi_conformance import ApiDescription

from notifier import closes
from notifier.api.asyncapi import CLIENT_MESSAGES, SERVER_MESSAGES, close_codes
from notifier.api.auth import JWKS_MAX_AGE_CEILING, jwks_max_age

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI_SCHEMA = Path(__file__).resolve().parent / "schemas" / "asyncapi-3.0.0.json"
FILLERS = {"{username}": "nobody-here", "{notification_id}": "1"}


async def openapi(api) -> dict:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def concrete(path: str) -> str:
    for template, value in FILLERS.items():
        path = path.replace(template, value)
    return path


# --- OpenAPI: what each route answers ----------------------------------------------------


async def test_every_route_that_answers_401_documents_it_and_does(api):
    document = await openapi(api)
    protected = [(m, p) for m, p, op in operations(document) if "401" in op["responses"]]
    assert ("POST", "/users") in protected
    assert ("POST", "/notifications/{notification_id}/read") in protected
    assert ("POST", "/ws-ticket") in protected
    for method, path in protected:
        if path in ("/token", "/session", "/metrics"):
            continue  # wrong passwords and the metrics token: their own tests
        for headers in ({}, bearer("not-a-token"), cookie("not-a-token")):
            response = await api.client.request(method, concrete(path), json={}, headers=headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"] in ("not authenticated", "invalid token")


async def test_admin_routes_document_403_and_answer_it_to_a_user(api):
    _, token = await api.user_with_token()
    document = await openapi(api)
    admin_only = [
        (m, p)
        for m, p, op in operations(document)
        if op["responses"].get("403", {}).get("description", "").startswith("A valid token")
    ]
    assert {path for _, path in admin_only} >= {
        "/users",
        "/users/{username}",
        "/users/{username}/revoke-tokens",
        "/users/{username}/notifications",
        "/notifications",
        "/notifications/broadcast",
    }
    for method, path in admin_only:
        response = await api.client.request(
            method, concrete(path), json={"title": "x"}, headers=bearer(token)
        )
        assert response.status_code == 403, (method, path, response.text)
        assert response.json() == {"detail": "admin only"}


async def test_conflict_not_found_and_too_large_are_documented(api):
    document = await openapi(api)
    paths = document["paths"]
    assert "409" in paths["/users"]["post"]["responses"]
    assert "404" in paths["/notifications/{notification_id}/read"]["post"]["responses"]
    for path, method in [
        ("/users", "post"),
        ("/notifications", "post"),
        ("/users/{username}/notifications", "post"),
        ("/token", "post"),
    ]:
        assert "413" in paths[path][method]["responses"], path
    assert "429" in paths["/users/me/password"]["put"]["responses"]

    name, token = await api.user_with_token()
    taken = await api.client.post(
        "/users",
        json={"username": name, "password": USER_PASSWORD},
        headers=await api.admin_headers(),
    )
    assert taken.status_code == 409
    missing = await api.client.post("/notifications/999999/read", headers=bearer(token))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "notification not found"}
    too_large = await api.client.post(
        "/users", content=b"x" * (1024 * 1024 + 1), headers=await api.admin_headers()
    )
    assert too_large.status_code == 413


async def test_metrics_lists_no_422_and_answers_none(server_factory, api_for):
    proc = server_factory(NOTIFIER_METRICS_TOKEN="scrape-secret-1234")
    async with api_for(proc) as api:
        responses = (await openapi(api))["paths"]["/metrics"]["get"]["responses"]
        assert set(responses) == {"200", "401"}
        for value in ("", "Bearer", "Basic abc", "Bearer wrong", "bearer  x y", "Bearer scrape"):
            response = await api.client.get("/metrics", headers={"Authorization": value})
            assert response.status_code == 401, value
        ok = await api.client.get(
            "/metrics", headers={"Authorization": "Bearer scrape-secret-1234"}
        )
        assert ok.status_code == 200
        assert "notifier_" in ok.text


def test_the_conformance_check_refuses_an_undocumented_status_or_body():
    description = ApiDescription(
        {
            "openapi": "3.1.0",
            "paths": {
                "/users/me": {"get": {"responses": {"200": {}}}},
                "/users/{username}": {
                    "patch": {
                        "responses": {
                            "404": {
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/E"}
                                    }
                                }
                            }
                        }
                    }
                },
            },
            "components": {
                "schemas": {"E": {"type": "object", "required": ["detail"]}},
            },
        }
    )
    assert description.check("GET", "/users/me", 200, {}) is None
    assert "not documented" in description.check("GET", "/users/me", 401, {})
    assert description.check("PATCH", "/users/bob", 404, {"detail": "x"}) is None
    assert "off its documented schema" in description.check("PATCH", "/users/bob", 404, {})
    assert "not documented" in description.check("PATCH", "/users/bob", 500, None)
    # Not route answers: unknown paths, and methods the route does not have.
    assert description.check("GET", "/nowhere", 404, None) is None
    assert description.check("DELETE", "/users/me", 405, None) is None


# --- Headers ------------------------------------------------------------------------------


async def test_every_answer_says_nosniff(api):
    _, token = await api.user_with_token()
    answers = [
        await api.client.get("/healthz"),
        await api.client.get("/no-such-route"),
        await api.client.get("/users/me"),
        await api.client.get("/users/me", headers=bearer(token)),
        await api.client.get("/static/app.js"),
        await api.client.get("/docs"),
        await api.client.get("/openapi.json"),
        await api.client.get("/asyncapi.json"),
        await api.client.post("/token", data={"username": "x", "password": "y"}),
        await api.client.post("/users", content=b"x" * (1024 * 1024 + 1)),
        await api.client.put("/healthz"),
    ]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url
        assert response.headers.get_list("x-content-type-options") == ["nosniff"]


async def test_credentialed_answers_are_not_stored_and_static_files_are(api):
    _, token = await api.user_with_token()
    for headers in (bearer(token), cookie(token)):
        for path in ("/users/me", "/notifications", "/session"):
            response = await api.client.get(path, headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["cache-control"] == "no-store", (path, headers)
        refused = await api.client.get("/users/me", headers=bearer("not-a-token"))
        assert refused.status_code == 401
        assert refused.headers["cache-control"] == "no-store"
        asset = await api.client.get("/static/app.js", headers=headers)
        assert "no-store" not in asset.headers.get("cache-control", "")
    anonymous = await api.client.get("/healthz")
    assert "cache-control" not in anonymous.headers
    page = await api.client.get("/", headers=cookie(token))
    assert page.headers["cache-control"] == "no-cache"  # the route's own policy stays


async def test_key_set_is_cacheable_for_less_than_a_rotation_overlap(api):
    response = await api.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == f"public, max-age={jwks_max_age(3600)}"
    assert jwks_max_age(3600) == JWKS_MAX_AGE_CEILING == 300
    assert jwks_max_age(600) == 60
    assert jwks_max_age(5) == 0


async def test_key_set_max_age_follows_the_token_lifetime(server_factory, api_for):
    proc = server_factory(NOTIFIER_ACCESS_TOKEN_TTL="120")
    async with api_for(proc) as api:
        response = await api.client.get("/.well-known/jwks.json")
        assert response.headers["cache-control"] == "public, max-age=12"


async def test_redoc_is_off_and_docs_load_only_local_assets(api):
    assert (await api.client.get("/redoc")).status_code == 404
    docs = await api.client.get("/docs")
    assert docs.status_code == 200
    policy = docs.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "http" not in docs.text.replace("http-equiv", "")
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        loaded = await api.client.get(asset)
        assert loaded.status_code == 200, asset
        assert loaded.headers["x-content-type-options"] == "nosniff"


# --- AsyncAPI -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def asyncapi_validator() -> Draft7Validator:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    assert schema["$id"] == "http://asyncapi.com/definitions/3.0.0/asyncapi.json"
    return Draft7Validator(schema)


async def asyncapi(api) -> dict:
    response = await api.client.get("/asyncapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


async def test_asyncapi_document_is_valid_asyncapi_3(api, asyncapi_validator):
    document = await asyncapi(api)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in asyncapi_validator.iter_errors(document)
    ]
    assert errors == []
    assert document["asyncapi"] == "3.0.0"
    assert document["servers"]["notifier"]["host"] == f"127.0.0.1:{api.server.port}"
    assert document["servers"]["notifier"]["protocol"] == "ws"
    schemes = document["components"]["securitySchemes"]
    assert {(s.get("in"), s.get("name") or s.get("scheme")) for s in schemes.values()} == {
        ("query", "ticket"),
        ("query", "token"),
        ("cookie", "access_token"),
        (None, "bearer"),
    }
    query = document["channels"]["socket"]["bindings"]["ws"]["query"]["properties"]
    assert set(query) == {"since", "ticket", "token"}
    # The validator is not a formality: a broken document fails it.
    broken = json.loads(json.dumps(document))
    broken["operations"]["sendServerMessages"]["action"] = "publish"
    assert list(asyncapi_validator.iter_errors(broken))


async def test_asyncapi_names_every_close_in_closes_py_and_no_other(api):
    listed = (await asyncapi(api))["channels"]["socket"]["x-close-codes"]
    documented = {(c["code"], c["reason"]) for c in listed if c["source"] == "notifier"}
    in_code = {(close.code, close.reason) for close in closes.listed()}
    shutdown = closes.shutdown(5000)
    assert documented == in_code | {(1012, "server restarting; retry_after_ms=<n>")}
    pattern = next(c["reasonPattern"] for c in listed if c["code"] == 1012)
    assert re.match(pattern, shutdown.reason)
    assert listed == json.loads(json.dumps(close_codes()))


def test_every_token_error_reason_is_a_listed_close():
    """A socket refused for a `TokenError` closes with its reason: each must be listed."""
    reasons = {close.reason for close in closes.listed()}
    raised = set()
    for source in (ROOT / "notifier").rglob("*.py"):
        raised |= set(re.findall(r'TokenError\("([^"]+)"\)', source.read_text()))
    assert raised, "no TokenError found: the scan is broken"
    assert raised - reasons == set()


def test_every_frame_type_the_server_builds_is_documented():
    built = set()
    for name in ("delivery/frames.py", "api/socket_session.py"):
        source = (ROOT / "notifier" / name).read_text()
        built |= set(re.findall(r"'\{\"type\":\"(\w+)\"", source))  # hand-built JSON
        built |= set(re.findall(r'dumps\(\{"type": "(\w+)"', source))
        built |= set(re.findall(r'_frame\("(\w+)"', source))
    assert built == set(SERVER_MESSAGES)
    assert set(CLIENT_MESSAGES) == {"auth"}


def payload_validator(document: dict, kind: str) -> Draft202012Validator:
    payload = document["components"]["messages"][kind]["payload"]
    return Draft202012Validator({**payload, "components": document["components"]})


async def test_real_frames_match_the_documented_payloads(server_factory, api_for):
    # Warned at once: the token has less left than the warning period.
    proc = server_factory(NOTIFIER_TOKEN_EXPIRY_WARNING="3600")
    async with api_for(proc) as api, AsyncExitStack() as stack:
        document = await asyncapi(api)
        name, token = await api.user_with_token()
        ws = await stack.enter_async_context(websockets.connect(f"{proc.ws_url}?token={token}"))
        sent = await api.send(name, "framed", data={"n": 1})
        marked = await api.client.post(f"/notifications/{sent['id']}/read", headers=bearer(token))
        assert marked.status_code == 200
        auth = {"type": "auth", "token": await api.login(name, USER_PASSWORD)}
        assert not list(payload_validator(document, "auth").iter_errors(auth))
        await ws.send(json.dumps(auth))
        frames: dict[str, dict] = {}
        async with asyncio.timeout(10):
            while set(frames) != set(SERVER_MESSAGES):
                frame = json.loads(await ws.recv())
                frames.setdefault(frame["type"], frame)
        for kind, frame in frames.items():
            errors = [e.message for e in payload_validator(document, kind).iter_errors(frame)]
            assert errors == [], (kind, frame)
        assert frames["notification"]["notification"]["id"] == sent["id"]
        assert frames["read"]["ids"] == [sent["id"]]

        # What the schema refuses, the server refuses too.
        empty = {"type": "auth", "token": ""}
        assert list(payload_validator(document, "auth").iter_errors(empty))
        await ws.send(json.dumps(empty))
        async with asyncio.timeout(5):
            await ws.wait_closed()
        assert (ws.close_code, ws.close_reason) == (1008, "invalid message")


async def test_docs_mention_the_offline_docs_and_asyncapi():
    readme = (ROOT / "README.md").read_text()
    assert "/asyncapi.json" in readme
    assert re.search(r"/docs.{0,200}offline", readme, re.S)
    source = (ROOT / "tests" / "schemas" / "README.md").read_text()
    assert "@asyncapi/specs" in source and "3.0.0.json" in source
