"""Login throttling per username and per client address: 429 with Retry-After, checked
before the password, so a locked account cannot be probed; one user's failures never
slow another user's login.

Client addresses are simulated with X-Forwarded-For, which this module's server trusts
from 127.0.0.1 (NOTIFIER_FORWARDED_ALLOW_IPS), as it would from a reverse proxy.
"""

import asyncio

import pytest
from clients import bearer
from conftest import USER_PASSWORD, unique_name
from sessions import login_pair

pytestmark = pytest.mark.integration

LIMITS = {
    "NOTIFIER_LOGIN_MAX_FAILURES_PER_USER": "3",
    "NOTIFIER_LOGIN_MAX_FAILURES_PER_ADDRESS": "6",
    "NOTIFIER_LOGIN_LOCKOUT": "30",
    "NOTIFIER_FORWARDED_ALLOW_IPS": "127.0.0.1",
}


SERVER_SETTINGS = LIMITS


async def _login(api, username: str, password: str, address: str):
    return await api.client.post(
        "/token",
        data={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )


def _retry_after(response, oauth: bool = True) -> int:
    """The lock's seconds; `oauth`: the body of POST /token (RFC 6749's `error` too)."""
    assert response.status_code == 429, response.text
    seconds = int(response.headers["retry-after"])
    assert 0 < seconds <= 30
    text = f"too many failed logins; retry in {seconds} seconds"
    if oauth:
        expected = {"error": "invalid_grant", "error_description": text, "detail": text}
    else:
        expected = {"detail": text}
    assert response.json() == expected
    return seconds


async def test_username_locks_after_repeated_failures(module_api) -> None:
    victim, other = await module_api.create_user(), await module_api.create_user()
    for _ in range(3):
        assert (await _login(module_api, victim, "wrong-password", "10.1.0.1")).status_code == 401
    # Locked: even the right password (from anywhere) waits, so guesses cannot continue.
    _retry_after(await _login(module_api, victim, USER_PASSWORD, "10.1.0.1"))
    _retry_after(await _login(module_api, victim, USER_PASSWORD, "10.1.0.2"))
    # Another user logs in at once, from the very same address.
    assert (await _login(module_api, other, USER_PASSWORD, "10.1.0.1")).status_code == 200


async def test_address_locks_after_spraying_many_names(module_api) -> None:
    real = await module_api.create_user()
    for _ in range(6):
        response = await _login(module_api, unique_name("spray"), "guess", "10.2.0.1")
        assert response.status_code == 401
    # The address is locked for every name, including a real user with the right password.
    _retry_after(await _login(module_api, real, USER_PASSWORD, "10.2.0.1"))
    _retry_after(await _login(module_api, unique_name("spray"), "guess", "10.2.0.1"))
    # The same user from another address is not slowed at all.
    assert (await _login(module_api, real, USER_PASSWORD, "10.2.0.2")).status_code == 200


async def test_success_resets_the_username_count(module_api) -> None:
    username = await module_api.create_user()
    for round_ in range(3):
        for _ in range(2):
            response = await _login(module_api, username, "wrong", f"10.3.{round_}.1")
            assert response.status_code == 401
        assert (
            await _login(module_api, username, USER_PASSWORD, f"10.3.{round_}.1")
        ).status_code == 200


async def test_concurrent_failures_cannot_outrun_the_lock(module_api) -> None:
    username = await module_api.create_user()
    responses = await asyncio.gather(
        *(_login(module_api, username, f"guess-{i}", f"10.4.{i}.1") for i in range(12))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {401, 429}
    # Checks of one username's password run one at a time: a burst gets no more guesses
    # than the limit, however concurrent.
    assert statuses.count(401) <= 3
    _retry_after(await _login(module_api, username, USER_PASSWORD, "10.4.99.1"))


async def test_wrong_current_password_counts_as_a_failed_login(module_api) -> None:
    username = await module_api.create_user()
    pair = await login_pair(module_api, username)
    headers = bearer(pair["access_token"]) | {"X-Forwarded-For": "10.5.0.1"}
    body = {"current_password": "guess", "new_password": "new-password-123"}
    for _ in range(3):
        response = await module_api.client.put("/users/me/password", json=body, headers=headers)
        assert response.status_code == 403
    locked = await module_api.client.put(
        "/users/me/password",
        json={"current_password": USER_PASSWORD, "new_password": "new-password-123"},
        headers=headers,
    )
    _retry_after(locked, oauth=False)


async def test_the_lock_lifts(server_factory, api_for) -> None:
    proc = server_factory(NOTIFIER_LOGIN_MAX_FAILURES_PER_USER="2", NOTIFIER_LOGIN_LOCKOUT="3")
    async with api_for(proc) as api:
        username = await api.create_user()
        for _ in range(2):
            assert (await _login(api, username, "wrong", "10.6.0.1")).status_code == 401
        locked = await _login(api, username, USER_PASSWORD, "10.6.0.1")
        assert locked.status_code == 429
        await asyncio.sleep(int(locked.headers["retry-after"]) + 0.5)
        assert (await _login(api, username, USER_PASSWORD, "10.6.0.1")).status_code == 200


async def test_throttling_can_be_turned_off(server_factory, api_for) -> None:
    proc = server_factory(
        NOTIFIER_LOGIN_MAX_FAILURES_PER_USER="0", NOTIFIER_LOGIN_MAX_FAILURES_PER_ADDRESS="0"
    )
    async with api_for(proc) as api:
        username = await api.create_user()
        for _ in range(8):
            assert (await _login(api, username, "wrong", "10.7.0.1")).status_code == 401
        assert (await _login(api, username, USER_PASSWORD, "10.7.0.1")).status_code == 200


async def test_a_users_own_parallel_logins_are_never_throttled(module_api) -> None:
    username = await module_api.create_user()
    responses = await asyncio.gather(
        *(_login(module_api, username, USER_PASSWORD, "10.8.0.1") for _ in range(12))
    )
    assert [r.status_code for r in responses] == [200] * 12
