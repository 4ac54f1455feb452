import websockets
from clients import recv_notification


async def test_post_reaches_socket(api):
    username, token = await api.user_with_token()
    async with websockets.connect(f"{api.server.ws_url}?token={token}") as ws:
        sent = await api.send(username, "hi")
        assert await recv_notification(ws) == sent
