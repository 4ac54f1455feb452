"""A pytest plugin: every HTTP answer a test gets from a real Notifier server must be
documented in that server's `/openapi.json`.

It watches every request httpx sends (the tests' `api` clients, Authlib, the CLI's client
run in-process...) to a loopback server. For each answer on a route the document
describes, the status must be listed for that route and method, and a JSON body must
match the schema documented for that status. A test that saw an undocumented answer fails
at teardown, naming each one; the terminal summary counts what was checked.

Answers outside the document (the page, static files, `/docs`, unknown paths, methods a
route does not have) are not route answers and are left alone.
"""

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
DOCUMENT_PATH = "/openapi.json"


@dataclass
class Route:
    template: str
    pattern: re.Pattern[str]
    operations: dict[str, dict[str, Any]]


@dataclass
class ApiDescription:
    """One server's OpenAPI document, ready to look answers up in."""

    document: dict[str, Any]
    routes: list[Route] = field(default_factory=list)
    validators: dict[tuple[str, str, str], Draft202012Validator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for template, operations in self.document.get("paths", {}).items():
            regex = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            self.routes.append(Route(template, re.compile(f"^{regex}$"), operations))
        # Literal segments win over parameters (`/users/me` before `/users/{username}`).
        self.routes.sort(key=lambda route: route.template.count("{"))

    def route_for(self, path: str) -> Route | None:
        return next((route for route in self.routes if route.pattern.match(path)), None)

    def check(self, method: str, path: str, status: int, body: Any | None) -> str | None:
        """None when the answer is documented, else what is wrong with it."""
        route = self.route_for(path)
        if route is None or method.lower() not in route.operations:
            return None
        responses = route.operations[method.lower()]["responses"]
        key = next(
            (k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None
        )
        where = f"{method} {route.template} answered {status}"
        if key is None:
            return f"{where}, which is not documented (documented: {', '.join(responses)})"
        schema = responses[key].get("content", {}).get("application/json", {}).get("schema")
        if schema is None or body is None:
            return None
        validator = self.validators.get((route.template, method, key))
        if validator is None:
            validator = Draft202012Validator(
                {**schema, "components": self.document.get("components", {})}
            )
            self.validators[route.template, method, key] = validator
        error = next(iter(validator.iter_errors(body)), None)
        if error is not None:
            return f"{where} with a body off its documented schema: {error.message}"
        return None


class ConformanceRecorder:
    """Fetches each server's document once and checks every answer against it."""

    def __init__(self) -> None:
        self._descriptions: dict[str, ApiDescription | None] = {}
        self.violations: list[str] = []
        self.checked: set[tuple[str, str, int]] = set()

    def description(self, origin: str) -> ApiDescription | None:
        if origin not in self._descriptions:
            self._descriptions[origin] = _fetch_description(origin)
        return self._descriptions[origin]

    def observe(self, response: httpx.Response) -> None:
        url = response.request.url
        if url.host not in LOOPBACK_HOSTS or url.path == DOCUMENT_PATH:
            return
        method = response.request.method
        if method in ("HEAD", "OPTIONS"):
            return
        description = self.description(f"{url.scheme}://{url.netloc.decode()}")
        if description is None:
            return
        route = description.route_for(url.path)
        if route is not None and method.lower() in route.operations:
            self.checked.add((method, route.template, response.status_code))
        problem = description.check(method, url.path, response.status_code, _json_body(response))
        if problem is not None:
            self.violations.append(problem)

    def take_violations(self) -> list[str]:
        found, self.violations = self.violations, []
        return found


def _fetch_description(origin: str) -> ApiDescription | None:
    # urllib, not httpx: this must not pass through the watched clients.
    try:
        with urllib.request.urlopen(origin + DOCUMENT_PATH, timeout=5) as answer:
            document = json.loads(answer.read())
    except (OSError, ValueError):
        return None  # not a Notifier server, or it is down: nothing to compare with
    if not isinstance(document, dict) or "openapi" not in document:
        return None
    return ApiDescription(document)


def _json_body(response: httpx.Response) -> Any | None:
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        content = response.content  # raises for a streamed answer not read yet
    except httpx.ResponseNotRead:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


recorder = ConformanceRecorder()


def _watch_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    original_send = httpx.Client.send
    original_async_send = httpx.AsyncClient.send

    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = original_send(self, request, **kwargs)
        recorder.observe(response)
        return response

    async def async_send(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any
    ) -> httpx.Response:
        response = await original_async_send(self, request, **kwargs)
        recorder.observe(response)
        return response

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", async_send)


@pytest.fixture(scope="session", autouse=True)
def _openapi_conformance_watch() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        _watch_httpx(monkeypatch)
        yield


@pytest.fixture(autouse=True)
def _openapi_conformance_check() -> Iterator[None]:
    yield
    found = recorder.take_violations()
    if found:
        pytest.fail(
            "answers not documented in /openapi.json:\n" + "\n".join(sorted(set(found))),
            pytrace=False,
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if recorder.checked:
        routes = {(method, template) for method, template, _ in recorder.checked}
        terminalreporter.write_line(
            f"openapi conformance: {len(recorder.checked)} (method, route, status) answers "
            f"on {len(routes)} operations checked against /openapi.json"
        )
