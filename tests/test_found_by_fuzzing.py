"""Inputs schemathesis found that used to answer 500; each now gets a clear 422 and
stores nothing."""

import pytest
from clients import bearer, inbox

pytestmark = pytest.mark.integration


async def test_integers_beyond_64_bits_in_data_are_422(api) -> None:
    username, token = await api.user_with_token()
    response = await api.client.post(
        f"/users/{username}/notifications",
        json={"title": "t", "data": {"n": 2**64}},
        headers=await api.admin_headers(),
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"][:2] == ["body", "data"]
    assert (await inbox(api, token))["items"] == []


async def test_ids_beyond_64_bits_are_422(api) -> None:
    _username, token = await api.user_with_token()
    huge = 2**80
    read = await api.client.post(f"/notifications/{huge}/read", headers=bearer(token))
    assert read.status_code == 422, read.text
    listing = await api.client.get(f"/notifications?before={huge}", headers=bearer(token))
    assert listing.status_code == 422, listing.text
    # The largest real id is still accepted (and names nothing).
    largest = await api.client.post(f"/notifications/{2**63 - 1}/read", headers=bearer(token))
    assert largest.status_code == 404
