"""Targets that are not voice agents: a silent WebSocket and an HTTP server without WebSockets."""

from __future__ import annotations

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


def http_only_server() -> _Server:
    """HttpOnlyServer: answers every GET with a page; refuses WebSocket upgrades (plain 200)."""
    async def page(request):
        return web.Response(text="hello, I am a web page")
    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return _Server(app)
