"""Targets that are not voice agents: a silent WebSocket, an HTTP server without WebSockets, an echo."""

from __future__ import annotations

import asyncio

from aiohttp import web


class _Server:
    def __init__(self, app: web.Application):
        self.app, self.port, self._runner = app, 0, None

    async def __aenter__(self):
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        await self._runner.cleanup()


def silent_ws_agent() -> _Server:
    """SilentWsAgent: accepts the WebSocket at /ws, reads everything, never says a thing."""
    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for _ in sock:
            pass
        return sock
    app = web.Application()
    app.router.add_get("/ws", ws)
    return _Server(app)


def ws_handler_server(handler, path: str = "/ws") -> _Server:
    """WsHandlerServer: aiohttp serving `handler(request)` at `path` (a WebSocket peer a test scripts)."""
    app = web.Application()
    app.router.add_get(path, handler)
    return _Server(app)


def http_only_server() -> _Server:
    """HttpOnlyServer: answers every GET with a page; refuses WebSocket upgrades (plain 200)."""
    async def page(request):
        return web.Response(text="hello, I am a web page")
    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return _Server(app)


def refusing_offer_server() -> _Server:
    """RefusingOfferServer: a WebRTC offer endpoint that answers every offer 422, as a framework does
    when its JSON body lacks a field it wants (and any other request 200)."""
    async def offer(request):
        await request.read()
        return web.json_response({"detail": [{"type": "missing", "loc": ["body", "webrtc_id"],
                                              "msg": "Field required"}]}, status=422)

    async def anything(request):
        return web.Response(text="ok")
    app = web.Application()
    app.router.add_post("/offer", offer)
    app.router.add_route("*", "/{tail:.*}", anything)
    return _Server(app)


def refusing_in_body_server() -> _Server:
    """RefusingInBodyServer: answers every WebRTC offer HTTP 200 with a refusal in the JSON body, as a
    framework does at its concurrency limit."""
    async def offer(request):
        await request.read()
        return web.json_response({"status": "failed", "meta": {"error": "concurrency_limit_reached", "limit": 1}})
    app = web.Application()
    app.router.add_post("/offer", offer)
    return _Server(app)


def unique_id_offer_proxy(upstream: str, id_field: str = "webrtc_id") -> _Server:
    """UniqueIdOfferProxy: a WebRTC offer endpoint that wants a client-chosen id per connection (422
    without one, a refusal in a 200 body for an id already used) and forwards good offers to
    `upstream` (a real agent's /offer); `server.ids` lists the ids it accepted, in order."""
    import aiohttp

    async def offer(request):
        body = await request.json()
        call_id = body.get(id_field)
        if not call_id:
            return web.json_response({"detail": [{"type": "missing", "loc": ["body", id_field],
                                                  "msg": "Field required"}]}, status=422)
        if call_id in server.ids:
            return web.json_response({"status": "failed", "meta": {"error": f"{id_field} already in use"}})
        server.ids.append(call_id)
        async with aiohttp.ClientSession() as s:
            async with s.post(upstream, json={"sdp": body["sdp"], "type": body["type"]}) as r:
                return web.json_response(await r.json(), status=r.status)
    app = web.Application()
    app.router.add_post("/offer", offer)
    server = _Server(app)
    server.ids = []
    return server


def scripted_ws_agent(script, path: str = "/media-stream") -> _Server:
    """ScriptedWsAgent: a WebSocket endpoint that hands each connection to `script(ws, received)`,
    where `received` collects every text message the caller sends (parsed JSON), in order."""
    import json

    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        received: list[dict] = []
        server.connections.append(received)

        async def reader():
            async for msg in sock:
                if msg.type.name == "TEXT":
                    received.append(json.loads(msg.data))

        import asyncio
        task = asyncio.create_task(reader())
        try:
            await script(sock, received)
            await task
        finally:
            task.cancel()
        return sock

    app = web.Application()
    app.router.add_get(path, ws)
    server = _Server(app)
    server.connections = []
    return server


def http_status_server(status: int, body: str = "", content_type: str = "text/plain") -> _Server:
    """HttpStatusServer: answers every POST with `status` and `body` (a signalling server that fails)."""
    async def answer(request):
        await request.read()
        return web.Response(status=status, text=body, content_type=content_type)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return _Server(app)


def echo_agent():
    """EchoAgent: an `AgentServer` (front door, lean ws-pcm) whose calls echo every audio message
    back, answer each JSON event with {"type": "echo", "of": …}, and fail on {"type": "boom"}."""
    from harness.agent.links import CallerAudio
    from harness.agent.server import AgentServer

    class EchoAgent(AgentServer):
        agent = "echo"

        def __init__(self):
            super().__init__()
            self.call_ids: list[str] = []
            self.events: list[dict] = []

        async def serve_call(self, link) -> None:
            self.call_ids.append(link.call_id)
            replies: asyncio.Queue = asyncio.Queue()

            def on_item(item) -> None:
                if isinstance(item, CallerAudio):
                    replies.put_nowait(item.pcm16)
                    return
                if item.event.get("type") == "boom":
                    raise ValueError("boom, as asked")
                self.events.append(item.event)
                replies.put_nowait({"type": "echo", "of": item.event})

            async def answer() -> None:
                while True:
                    reply = await replies.get()
                    await (link.send_audio(reply) if isinstance(reply, bytes) else link.send_event(reply))

            async with asyncio.TaskGroup() as tg:
                answering = tg.create_task(answer())
                try:
                    await link.pump(on_item)
                finally:
                    answering.cancel()

    return EchoAgent()


def push_transport():
    """PushTransport: a caller-side `Transport` whose `deliver(item)` hands an item to the call
    synchronously, as a socket's read callback does (ws-pcm); nothing goes on a wire."""
    from harness.transports.base import Transport

    class PushTransport(Transport):
        name = "push"

        def __init__(self):
            self.on_item = None
            self._closed = asyncio.Event()

        async def connect(self) -> None:
            pass

        async def send_audio(self, pcm16: bytes) -> None:
            return None

        async def send_event(self, event: dict) -> None:
            pass

        async def received(self):
            await self._closed.wait()
            return
            yield

        async def pump(self, on_item) -> None:
            self.on_item = on_item
            await self._closed.wait()

        def deliver(self, item) -> None:
            self.on_item(item)

        async def close(self) -> None:
            self._closed.set()

    return PushTransport()
