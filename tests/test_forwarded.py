"""X-Forwarded-For names the client only when it comes from a proxy the operator lists
(NOTIFIER_FORWARDED_ALLOW_IPS, empty by default): a client cannot pick its own address
to slip past the per-address login lock."""

import pytest
from conftest import unique_name

pytestmark = pytest.mark.integration

ATTEMPTS = 120
# Lower than the default 50 only to hash fewer wrong passwords; the proxy setting stays at
# its default.
PER_ADDRESS = 10


async def test_rotating_forwarded_addresses_are_locked_as_one_address(
    server_factory, api_for
) -> None:
    proc = server_factory(NOTIFIER_LOGIN_MAX_FAILURES_PER_ADDRESS=str(PER_ADDRESS))
    async with api_for(proc) as api:
        statuses = []
        # One at a time, so the count is exact; each guess claims a new address.
        for attempt in range(ATTEMPTS):
            response = await api.client.post(
                "/token",
                data={"username": unique_name("spray"), "password": "guess"},
                headers={"X-Forwarded-For": f"203.0.113.{attempt % 250 + 1}"},
            )
            statuses.append(response.status_code)
    assert statuses == [401] * PER_ADDRESS + [429] * (ATTEMPTS - PER_ADDRESS)
    # The log names the real peer, never an address the client made up.
    assert "203.0.113." not in proc.log()
