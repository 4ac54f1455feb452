"""The refresh-reuse grace (NOTIFIER_REFRESH_REUSE_GRACE): a refresh token presented again
soon after its first use (parallel tabs, a retried request) gets another working pair of
the same session; later, reuse revokes the session; with 0, every reuse does.

On SQLite and on PostgreSQL + Redis, with the refreshes split over two server processes
sharing the database (as two workers or hosts would).
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack

import httpx
import pytest
import websockets
from clients import bearer, recv_notification
from conftest import Api, ServerProcess, backend_env, unique_name
from sessions import claims, closed_with, login_pair, refresh, status_with, user_with_pair

pytestmark = [pytest.mark.integration, pytest.mark.backends]

CONCURRENT_REFRESHES = 8
SHORT_GRACE = 1
REUSED = "refresh token reused; the session is revoked"


def _start(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> ServerProcess:
    proc = ServerProcess(tmp_path_factory.mktemp("grace"), env_overrides=env)
    proc.start()
    return proc


@pytest.fixture(scope="module")
def grace_servers(server, tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The shared server (default grace, 10 s) and a second process on its database and
    broker."""
    shared = ("NOTIFIER_DATABASE_URL", "NOTIFIER_BROKER_URL", "NOTIFIER_BROKER_CHANNEL_PREFIX")
    second = _start(tmp_path_factory, {k: server.env()[k] for k in shared if k in server.env()})
    yield server, second
    second.stop()


def _server_with_grace(request, backend, tmp_path_factory, grace: int) -> Iterator[ServerProcess]:
    env = {**backend_env(request, backend), "NOTIFIER_REFRESH_REUSE_GRACE": str(grace)}
    proc = _start(tmp_path_factory, env)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def short_grace_server(request, backend, tmp_path_factory) -> Iterator[ServerProcess]:
    yield from _server_with_grace(request, backend, tmp_path_factory, SHORT_GRACE)


@pytest.fixture(scope="module")
def no_grace_server(request, backend, tmp_path_factory) -> Iterator[ServerProcess]:
    yield from _server_with_grace(request, backend, tmp_path_factory, 0)


@pytest.fixture
async def apis(grace_servers, api_for) -> AsyncIterator[tuple[Api, Api]]:
    async with api_for(grace_servers[0]) as first, api_for(grace_servers[1]) as second:
        yield first, second


@pytest.fixture
async def short_api(short_grace_server, api_for) -> AsyncIterator[Api]:
    async with api_for(short_grace_server) as api:
        yield api


@pytest.fixture
async def strict_api(no_grace_server, api_for) -> AsyncIterator[Api]:
    async with api_for(no_grace_server) as api:
        yield api


async def _socket(api: Api, token: str, stack: AsyncExitStack) -> websockets.ClientConnection:
    return await stack.enter_async_context(
        websockets.connect(api.server.ws_url, additional_headers=bearer(token))
    )


def _refusal(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    assert body["detail"] == body["error_description"], body
    return response.status_code, body["error"], body["error_description"]


async def test_eight_concurrent_refreshes_of_one_token_all_get_working_pairs(apis) -> None:
    first, second = apis
    username, pair = await user_with_pair(first)
    session_id = claims(pair["access_token"])["sid"]

    # Eight clients refresh with the same token at once, half of them through each process.
    responses = await asyncio.gather(
        *(refresh(apis[n % 2], pair["refresh_token"]) for n in range(CONCURRENT_REFRESHES))
    )
    print("eight concurrent refreshes:", [r.status_code for r in responses])
    assert [r.status_code for r in responses] == [200] * CONCURRENT_REFRESHES, [
        r.text for r in responses
    ]
    pairs = [r.json() for r in responses]
    assert len({p["refresh_token"] for p in pairs} | {pair["refresh_token"]}) == 9
    assert len({p["access_token"] for p in pairs}) == CONCURRENT_REFRESHES
    assert {claims(p["access_token"])["sid"] for p in pairs} == {session_id}

    # Nothing was revoked: every access token works, over HTTP and for a socket (all on the
    # first process: SQLite's in-process broker delivers only to its own sockets).
    async with AsyncExitStack() as stack:
        sockets = []
        for n, token in enumerate([pair["access_token"], *(p["access_token"] for p in pairs)]):
            assert await status_with(apis[n % 2], token) == (200, username)
            sockets.append(await _socket(first, token, stack))
        sent = await first.send(username, "after the race")
        for ws in sockets:
            assert await recv_notification(ws) == sent

        # Each of the eight refresh tokens works once more (and each gets a single successor).
        again = await asyncio.gather(*(refresh(second, p["refresh_token"]) for p in pairs))
        assert [r.status_code for r in again] == [200] * CONCURRENT_REFRESHES
        for response in again:
            assert await status_with(first, response.json()["access_token"]) == (200, username)
        for ws in sockets:
            assert ws.state is websockets.State.OPEN
    # Other users' sessions are untouched by all this.
    other, other_token = await first.user_with_token()
    assert await status_with(first, other_token) == (200, other)


async def test_reuse_after_the_grace_revokes_the_whole_session(short_api) -> None:
    username, pair = await user_with_pair(short_api)
    bystander = await login_pair(short_api, username)  # another login of the same user
    winner = (await refresh(short_api, pair["refresh_token"])).json()
    twin = (await refresh(short_api, pair["refresh_token"])).json()  # within the grace
    async with AsyncExitStack() as stack:
        old_ws = await _socket(short_api, pair["access_token"], stack)
        winner_ws = await _socket(short_api, winner["access_token"], stack)
        twin_ws = await _socket(short_api, twin["access_token"], stack)
        other_ws = await _socket(short_api, bystander["access_token"], stack)
        sent = await short_api.send(username, "before the theft")
        for ws in (old_ws, winner_ws, twin_ws, other_ws):
            assert await recv_notification(ws) == sent

        await asyncio.sleep(SHORT_GRACE + 1.2)
        late = await refresh(short_api, pair["refresh_token"])
        assert _refusal(late) == (400, "invalid_grant", REUSED)

        # Every token of that session dies, and its sockets close as on any revocation.
        for ws in (old_ws, winner_ws, twin_ws):
            assert await closed_with(ws) == (1008, "token revoked")
        for token in (pair["access_token"], winner["access_token"], twin["access_token"]):
            assert await status_with(short_api, token) == (401, "token revoked")
        for spare in (winner["refresh_token"], twin["refresh_token"]):
            assert _refusal(await refresh(short_api, spare)) == (
                400,
                "invalid_grant",
                "token revoked",
            )
        # The other login of the same user lives on, socket and all.
        assert await status_with(short_api, bystander["access_token"]) == (200, username)
        sent = await short_api.send(username, "after the theft")
        assert await recv_notification(other_ws) == sent


async def test_without_grace_concurrent_refreshes_revoke_the_session(strict_api) -> None:
    _username, pair = await user_with_pair(strict_api)
    responses = await asyncio.gather(
        *(refresh(strict_api, pair["refresh_token"]) for _ in range(CONCURRENT_REFRESHES))
    )
    statuses = sorted(r.status_code for r in responses)
    # Exactly one wins the rotation; every later one is a reuse, which kills the winner's pair.
    assert statuses == [200] + [400] * (CONCURRENT_REFRESHES - 1), [r.text for r in responses]
    for response in responses:
        if response.status_code == 400:
            assert _refusal(response) == (400, "invalid_grant", REUSED)
        else:
            winner = response.json()
    assert await status_with(strict_api, winner["access_token"]) == (401, "token revoked")
    assert _refusal(await refresh(strict_api, winner["refresh_token"]))[2] == "token revoked"


async def test_without_grace_a_reuse_revokes_the_family(strict_api) -> None:
    username, pair = await user_with_pair(strict_api)
    renewed = (await refresh(strict_api, pair["refresh_token"])).json()

    # A thief (or a confused client) presents the spent token again.
    reused = await refresh(strict_api, pair["refresh_token"])
    expected = {"error": "invalid_grant", "error_description": REUSED, "detail": REUSED}
    assert reused.json() == expected
    assert reused.status_code == 400
    # Every token of that family is dead: both access tokens and the newest refresh token.
    for token in (pair["access_token"], renewed["access_token"]):
        assert await status_with(strict_api, token) == (401, "token revoked")
    latest = await refresh(strict_api, renewed["refresh_token"])
    assert _refusal(latest) == (400, "invalid_grant", "token revoked")

    # Other logins of the same user are untouched, and the user can log in again.
    other = await login_pair(strict_api, username)
    assert await status_with(strict_api, other["access_token"]) == (200, username)


async def test_without_grace_each_login_is_its_own_family(strict_api) -> None:
    username = await strict_api.create_user(unique_name())
    first, second = await login_pair(strict_api, username), await login_pair(strict_api, username)
    assert claims(first["access_token"])["sid"] != claims(second["access_token"])["sid"]
    await refresh(strict_api, first["refresh_token"])
    await refresh(strict_api, first["refresh_token"])  # reuse: first family revoked
    assert await status_with(strict_api, first["access_token"]) == (401, "token revoked")
    assert await status_with(strict_api, second["access_token"]) == (200, username)
    assert (await refresh(strict_api, second["refresh_token"])).status_code == 200


async def test_a_grace_reissue_refuses_what_a_rotation_refuses(apis) -> None:
    """Within the grace, a revoked session or a disabled user still ends the exchange."""
    first, _second = apis
    _username, pair = await user_with_pair(first)
    assert (await refresh(first, pair["refresh_token"])).status_code == 200
    revoked = await first.client.post("/token/revoke", data={"token": pair["access_token"]})
    assert revoked.status_code == 200
    again = await refresh(first, pair["refresh_token"])
    assert _refusal(again) == (400, "invalid_grant", "token revoked")

    username, pair = await user_with_pair(first)
    assert (await refresh(first, pair["refresh_token"])).status_code == 200
    disabled = await first.client.patch(
        f"/users/{username}", json={"disabled": True}, headers=await first.admin_headers()
    )
    assert disabled.status_code == 200, disabled.text
    again = await refresh(first, pair["refresh_token"])
    assert _refusal(again) == (400, "invalid_grant", "user disabled")
