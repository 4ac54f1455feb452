"""JSON bodies with text that cannot be encoded are refused with a 422 at the field.

Python's JSON parser accepts a lone surrogate, as the escape `"\\ud800"` or as raw UTF-8
bytes (it decodes bodies with `surrogatepass`), and such a string can be neither stored,
sent on a socket, nor echoed in an error: every later step failed with a 500. Routes of
`InputCheckedRoute` find such strings (keys too) before validation and answer
`{"type": "string_unicode", "loc": [...], "msg": "invalid unicode: lone surrogate"}`.
"""

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

LONE_SURROGATE = "invalid unicode: lone surrogate"
# What a surrogate looks like in a UTF-8 body: a \uD800-\uDFFF escape, or its raw bytes.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")

Loc = tuple[str | int, ...]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _readable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def lone_surrogate_at(value: object, loc: Loc = ("body",)) -> Loc | None:
    """Where the first string (or key) that is not valid Unicode sits in `value`, if any."""
    if isinstance(value, str):
        return None if _encodable(value) else loc
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not _encodable(key):
                return (*loc, _readable(key))
            found = lone_surrogate_at(item, (*loc, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, (*loc, index))
            if found is not None:
                return found
    return None


def lone_surrogate_error(loc: Loc) -> RequestValidationError:
    return RequestValidationError([{"type": "string_unicode", "loc": loc, "msg": LONE_SURROGATE}])


async def _check_json_body(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type.lower():
        return  # FastAPI parses JSON only when the body says so (or says nothing)
    body = await request.body()
    # json.loads also reads UTF-16 and UTF-32 (a NUL among the first bytes): check those whole.
    if b"\x00" not in body[:4] and not _MAYBE_SURROGATE.search(body):
        return
    try:
        # Cached on the request: FastAPI's own parse below reuses it.
        parsed = await request.json()
    except (ValueError, UnicodeDecodeError):
        return  # not JSON: FastAPI answers that itself
    loc = lone_surrogate_at(parsed)
    if loc is not None:
        raise lone_surrogate_error(loc)


class InputCheckedRoute(APIRoute):
    """An APIRoute that refuses JSON bodies holding lone surrogates (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle  # FastAPI never reads this route's body

        async def checked(request: Request) -> Response:
            await _check_json_body(request)
            return await handle(request)

        return checked


class EncodableJSONResponse(JSONResponse):
    """A JSONResponse that escapes what UTF-8 cannot carry instead of failing with a 500.

    For error bodies, which echo the input back: a backstop behind `InputCheckedRoute`.
    """

    def render(self, content: Any) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")
