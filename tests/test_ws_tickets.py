"""`POST /ws-ticket` and `/ws?ticket=`: a 30-second, single-use stand-in for the access
token in the URL, bound to its user and (when bought from a browser) its Origin; and
`NOTIFIER_WS_ALLOW_QUERY_TOKEN=false`, which refuses `?token=` outright."""

import asyncio

import pytest
import websockets
from clients import bearer, recv_notification
from sessions import closed_with, revoke, user_with_pair

pytestmark = pytest.mark.integration


async def buy_ticket(api, token: str, origin: str | None = None) -> dict:
    headers = bearer(token) | ({"Origin": origin} if origin else {})
    response = await api.client.post("/ws-ticket", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    return body


async def test_a_ticket_opens_its_users_socket_once(api) -> None:
    username, pair = await user_with_pair(api)
    other, _other_pair = await user_with_pair(api)
    ticket = await buy_ticket(api, pair["access_token"])
    assert ticket["expires_in"] == 30
    url = f"{api.server.ws_url}?ticket={ticket['ticket']}"
    async with websockets.connect(url) as ws:
        # The socket belongs to the ticket's user, and only to them.
        theirs = await api.send(other, "not yours")
        mine = await api.send(username, "yours")
        assert await recv_notification(ws) == mine
        assert theirs["username"] == other
        # Used once: a second socket with it is refused, on top of the live one.
        async with websockets.connect(url) as again:
            assert await closed_with(again) == (1008, "invalid ticket")
        later = await api.send(username, "still open")
        assert await recv_notification(ws) == later


async def test_bad_tickets_are_refused(api) -> None:
    for ticket in ("", "nope", "x" * 500):
        async with websockets.connect(f"{api.server.ws_url}?ticket={ticket}") as ws:
            assert await closed_with(ws) == (1008, "invalid ticket")


async def test_a_ticket_is_bound_to_the_origin_it_was_bought_from(api) -> None:
    _username, pair = await user_with_pair(api)
    for origin, expected in (
        ("https://evil.example", (1008, "origin not allowed")),
        (None, (1008, "origin not allowed")),
    ):
        ticket = await buy_ticket(api, pair["access_token"], "https://app.example")
        headers = {"Origin": origin} if origin else {}
        url = f"{api.server.ws_url}?ticket={ticket['ticket']}"
        async with websockets.connect(url, additional_headers=headers) as ws:
            assert await closed_with(ws) == expected
    ticket = await buy_ticket(api, pair["access_token"], "https://app.example")
    async with websockets.connect(
        f"{api.server.ws_url}?ticket={ticket['ticket']}", origin="https://app.example"
    ) as ws:
        await api.send(_username, "right origin")
        assert (await recv_notification(ws))["title"] == "right origin"


async def test_revoking_the_session_voids_its_tickets(api) -> None:
    _username, pair = await user_with_pair(api)
    ticket = await buy_ticket(api, pair["access_token"])
    await revoke(api, pair["access_token"])
    async with websockets.connect(f"{api.server.ws_url}?ticket={ticket['ticket']}") as ws:
        assert await closed_with(ws) == (1008, "invalid ticket")


async def test_a_socket_opened_by_ticket_closes_when_its_session_is_revoked(api) -> None:
    _username, pair = await user_with_pair(api)
    ticket = await buy_ticket(api, pair["access_token"])
    async with websockets.connect(f"{api.server.ws_url}?ticket={ticket['ticket']}") as ws:
        await revoke(api, pair["refresh_token"])
        assert await closed_with(ws) == (1008, "token revoked")


async def test_buying_a_ticket_needs_a_valid_token(api) -> None:
    assert (await api.client.post("/ws-ticket")).status_code == 401
    assert (await api.client.post("/ws-ticket", headers=bearer("garbage"))).status_code == 401
    _username, pair = await user_with_pair(api)
    await revoke(api, pair["access_token"])
    response = await api.client.post("/ws-ticket", headers=bearer(pair["access_token"]))
    assert response.status_code == 401
    assert response.json() == {"detail": "token revoked"}


async def test_an_expired_ticket_is_refused(server_factory, api_for) -> None:
    proc = server_factory(NOTIFIER_WS_TICKET_TTL="1")
    async with api_for(proc) as api:
        _username, pair = await user_with_pair(api)
        ticket = await buy_ticket(api, pair["access_token"])
        assert ticket["expires_in"] == 1
        await asyncio.sleep(2.1)
        async with websockets.connect(f"{proc.ws_url}?ticket={ticket['ticket']}") as ws:
            assert await closed_with(ws) == (1008, "invalid ticket")


@pytest.mark.backends
async def test_tickets_work_across_workers_and_only_once(server_factory, api_for) -> None:
    # Two server processes on one database (and broker), as two workers or hosts.
    first = server_factory()
    second = server_factory(like=first)
    async with api_for(first) as api_a, api_for(second) as api_b:
        username, pair = await user_with_pair(api_a)
        ticket = (await buy_ticket(api_a, pair["access_token"]))["ticket"]
        async with websockets.connect(f"{second.ws_url}?ticket={ticket}") as ws:
            sent = await api_b.send(username, "via the other worker")
            assert await recv_notification(ws) == sent
            for proc in (first, second):
                async with websockets.connect(f"{proc.ws_url}?ticket={ticket}") as again:
                    assert await closed_with(again) == (1008, "invalid ticket")


async def test_query_tokens_can_be_refused(server_factory, api_for) -> None:
    proc = server_factory(NOTIFIER_WS_ALLOW_QUERY_TOKEN="false")
    async with api_for(proc) as api:
        username, pair = await user_with_pair(api)
        async with websockets.connect(f"{proc.ws_url}?token={pair['access_token']}") as ws:
            assert await closed_with(ws) == (1008, "query token not allowed")
        # Tickets and the Authorization header still work.
        ticket = await buy_ticket(api, pair["access_token"])
        async with (
            websockets.connect(f"{proc.ws_url}?ticket={ticket['ticket']}") as by_ticket,
            websockets.connect(
                proc.ws_url, additional_headers=bearer(pair["access_token"])
            ) as by_header,
        ):
            sent = await api.send(username, "both")
            assert await recv_notification(by_ticket) == sent
            assert await recv_notification(by_header) == sent


async def test_tickets_never_reach_the_logs(server_factory, api_for) -> None:
    proc = server_factory()
    async with api_for(proc) as api:
        _username, pair = await user_with_pair(api)
        ticket = (await buy_ticket(api, pair["access_token"]))["ticket"]
        async with websockets.connect(f"{proc.ws_url}?ticket={ticket}&since=0") as ws:
            await api.send(_username, "logged")
            await recv_notification(ws)
        async with websockets.connect(f"{proc.ws_url}?ticket={ticket}") as ws:
            await closed_with(ws)
    log = proc.log()
    assert "ticket=[redacted]" in log
    assert ticket not in log
    assert pair["access_token"] not in log and pair["refresh_token"] not in log
