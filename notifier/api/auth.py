"""Logging in and out: bearer tokens for apps and curl, a cookie session for browsers,
refresh-token rotation, revocation, socket tickets and the public key set."""

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response, status
from fastapi.exceptions import RequestValidationError

from notifier.api.deps import (
    COOKIE_NAME,
    CurrentCredentials,
    RuntimeDep,
    Services,
    bearer_scheme,
    client_address,
    find_credential,
)
from notifier.api.errors import THROTTLED, TOO_LARGE, UNAUTHENTICATED
from notifier.api.oauth_errors import (
    INVALID_REQUEST,
    NO_STORE,
    UNSUPPORTED_GRANT_TYPE,
    OAuthRoute,
)
from notifier.auth.sessions import TokenPair
from notifier.errors import OAuthRequestError, TokenError
from notifier.schemas import (
    OAuthError,
    OAuthValidationError,
    SessionInfo,
    Token,
    TokenForm,
    WsTicketOut,
)

MALFORMED: dict[int | str, dict[str, Any]] = {
    422: {
        "model": OAuthValidationError,
        "description": "A missing or malformed field (`invalid_request`)",
    }
}
TOKEN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "model": OAuthError,
        "description": "Refresh token refused (`invalid_grant`), or another grant_type "
        "(`unsupported_grant_type`)",
    },
    401: {
        "model": OAuthError,
        "description": "Wrong username or password (`invalid_grant`)",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    403: {"model": OAuthError, "description": "The account is disabled (`invalid_grant`)"},
    429: {
        **THROTTLED[429],
        "model": OAuthError,
        "description": "Too many failed logins for this username or address; see Retry-After "
        "(`invalid_grant`)",
    },
    **MALFORMED,
}
REVOKE_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Revoked, or not a token this server knows (RFC 7009)"},
    400: {"model": OAuthError, "description": "No `token` field (`invalid_request`)"},
    **MALFORMED,
}


# Every route here takes only OAuth2 forms (or nothing), so all of them answer like that.
router = APIRouter(tags=["auth"], route_class=OAuthRoute)


def _missing(*fields: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "missing", "loc": ("body", name), "msg": "Field required"} for name in fields]
    )


async def _grant(runtime: Services, request: Request, form: TokenForm) -> TokenPair:
    """Run the grant the form asks for. Its refusals (`InvalidGrantError`,
    `LoginThrottledError`, `InvalidCredentialsError`, `AccountDisabledError`) carry their
    RFC 6749 code, which `OAuthRoute` answers with."""
    if form.grant_type == "refresh_token":
        if not form.refresh_token:
            raise _missing("refresh_token")
        return await runtime.accounts.sessions.refresh(form.refresh_token)
    if form.grant_type != "password":
        raise OAuthRequestError(
            UNSUPPORTED_GRANT_TYPE, "grant_type must be password or refresh_token"
        )
    missing = [name for name in ("username", "password") if not getattr(form, name)]
    if missing:
        raise _missing(*missing)
    assert form.username is not None and form.password is not None
    address = client_address(request.scope)
    return await runtime.accounts.login(form.username, form.password, address)


def token_body(pair: TokenPair, response: Response) -> Token:
    response.headers.update(NO_STORE)
    return Token(
        access_token=pair.access.token,
        expires_in=pair.access.expires_in,
        refresh_token=pair.refresh_token,
    )


def set_session_cookie(runtime: Services, response: Response, token: Token) -> None:
    response.set_cookie(
        COOKIE_NAME,
        token.access_token,
        max_age=token.expires_in,
        httponly=True,
        secure=runtime.settings.cookie_secure,
        samesite="lax",
        path="/",
    )


TokenRequest = Annotated[TokenForm, Form()]


@router.post(
    "/token",
    response_model=Token,
    responses={**TOKEN_ERRORS, **TOO_LARGE},
    summary="Log in, or exchange a refresh token (OAuth2 token endpoint)",
)
async def issue_token(
    runtime: RuntimeDep, request: Request, form: TokenRequest, response: Response
) -> Token:
    """`grant_type=password` (default) with `username` and `password`, or
    `grant_type=refresh_token` with `refresh_token`. Each refresh token works once."""
    return token_body(await _grant(runtime, request, form), response)


@router.post(
    "/session",
    response_model=Token,
    responses={**TOKEN_ERRORS, **TOO_LARGE},
    summary="Log in (or refresh) with an HttpOnly cookie",
)
async def open_session(
    runtime: RuntimeDep, request: Request, form: TokenRequest, response: Response
) -> Token:
    """Same grants and body as `POST /token`; also sets the `access_token` cookie."""
    token = token_body(await _grant(runtime, request, form), response)
    set_session_cookie(runtime, response, token)
    return token


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Log out")
async def close_session(
    runtime: RuntimeDep,
    request: Request,
    response: Response,
    _documented: Annotated[str | None, Depends(bearer_scheme)],
) -> None:
    """Revoke the session of the cookie or bearer token (its refresh tokens and sockets
    too) and clear the cookie. Answers 204 whatever the credentials."""
    credential = find_credential(request)
    if credential is not None:
        await runtime.accounts.sessions.revoke(credential.value, "access_token")
    response.delete_cookie(
        COOKIE_NAME,
        path="/",
        httponly=True,
        secure=runtime.settings.cookie_secure,
        samesite="lax",
    )


@router.post(
    "/token/revoke",
    status_code=status.HTTP_200_OK,
    response_class=Response,
    responses={**REVOKE_ERRORS, **TOO_LARGE},
    summary="Revoke a token (RFC 7009)",
)
async def revoke_token(
    runtime: RuntimeDep,
    token: Annotated[str | None, Form(max_length=8192)] = None,
    token_type_hint: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    """Revoke the session an access or refresh token belongs to: every token of that
    login stops working and its sockets close with 1008 "token revoked"."""
    if not token:
        raise OAuthRequestError(INVALID_REQUEST, "the form field `token` is required")
    await runtime.accounts.sessions.revoke(token, token_type_hint)
    return Response(status_code=status.HTTP_200_OK, headers=NO_STORE)


@router.post(
    "/ws-ticket",
    response_model=WsTicketOut,
    responses=UNAUTHENTICATED,
    summary="A single-use ticket for /ws?ticket=",
)
async def issue_ws_ticket(
    runtime: RuntimeDep, request: Request, credentials: CurrentCredentials, response: Response
) -> WsTicketOut:
    """Valid for `NOTIFIER_WS_TICKET_TTL` seconds (30), once, for the caller, and for the
    request's Origin when it has one. The socket lasts as long as the caller's token."""
    user, claims = credentials
    tickets = runtime.accounts.tickets
    ticket = await tickets.issue(user, claims, request.headers.get("origin"))
    response.headers.update(NO_STORE)
    return WsTicketOut(ticket=ticket, expires_in=tickets.ttl)


@router.get(
    "/.well-known/jwks.json",
    summary="Public keys that verify access tokens (RS256/ES256 only)",
)
async def json_web_key_set(
    runtime: RuntimeDep, response: Response
) -> dict[str, list[dict[str, str]]]:
    """A JWK Set (RFC 7517) of every key tokens may currently be signed with, by `kid`.
    Empty with HS256, whose key is secret. Cacheable for `jwks_max_age` seconds."""
    max_age = jwks_max_age(runtime.settings.access_token_ttl)
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return runtime.accounts.tokens.keys.public_jwks()


JWKS_MAX_AGE_CEILING = 300


def jwks_max_age(access_token_ttl: int) -> int:
    """How long a verifier may cache the key set: a tenth of the access-token lifetime (the
    overlap a rotation keeps the old key listed), at most five minutes. A verifier that
    meets a new `kid` within that time refetches (PyJWKClient, jose libraries do)."""
    return min(JWKS_MAX_AGE_CEILING, access_token_ttl // 10)


@router.get("/session", response_model=SessionInfo, summary="Who the session speaks for")
async def read_session(
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    _documented: Annotated[str | None, Depends(bearer_scheme)],
) -> SessionInfo:
    """Always 200, so a page can ask whether it is logged in without a failed request;
    `reason` says why not, in the words a socket's 1008 close would use."""
    response.headers["Cache-Control"] = "no-store"
    credential = find_credential(request)
    if credential is None:
        return SessionInfo(authenticated=False, reason="no token")
    try:
        user, claims = await runtime.accounts.resolve(credential.value)
    except TokenError as exc:
        return SessionInfo(authenticated=False, reason=exc.reason)
    return SessionInfo(
        authenticated=True,
        username=user.username,
        is_admin=user.is_admin,
        expires_in=max(0, claims.expires_at - int(time.time())),
    )
