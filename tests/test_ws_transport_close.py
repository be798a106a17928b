"""The trio-websocket transport closes its socket however the connection ends.

An oversized message makes trio-websocket send a 1009 close frame and stop reading, without
closing its TCP stream; the transport must close it (else one socket leaks per oversized frame).
"""

from __future__ import annotations

from functools import partial

import pytest
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from wecom_actors.errors import ConnectionLost
from wecom_actors.longconn.transport import open_ws_transport


async def test_an_oversized_message_closes_the_old_socket() -> None:
    eofs: list[bool] = []
    closed = trio.Event()

    async def peer(stream: trio.SocketStream) -> None:
        # A server that sends one oversized message, then only reads: it sees EOF (or a reset) only
        # if the client closes its socket.
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # closed with our message unread: a reset
                data = b""
            if not data:
                eofs.append(True)
                closed.set()
                return
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send_all(ws.send(AcceptConnection()) + ws.send(TextMessage(data="x" * 5000)))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, peer, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(ConnectionLost, match="1009"):
            async with open_ws_transport(
                f"ws://127.0.0.1:{port}/", connect_timeout=5, max_message_size=1000, disconnect_timeout=0.5
            ) as transport:
                await transport.receive()
        with trio.fail_after(2):
            await closed.wait()
        assert eofs == [True]
        nursery.cancel_scope.cancel()
