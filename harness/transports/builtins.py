"""The three built-in transports, registered like any other (see `registry`)."""

from __future__ import annotations

from harness.transports.registry import TransportEntry, TransportOption, parse_pairs, register


async def _http_probe(url: str, timeout_s: float) -> None:
    from harness.transports.webrtc_url import probe_http
    await probe_http(url, timeout_s)


register(TransportEntry(
    name="ws-pcm",
    summary="binary WebSocket, 20 ms PCM16LE 16 kHz frames each way, JSON text events",
    caller="harness.transports.ws_pcm:WsPcmTransport",
    caller_variants={"aiohttp": "harness.transports.ws_pcm:AiohttpWsPcmTransport"},
    url_schemes=("ws", "wss"), url_example="ws://HOST:PORT/PATH or wss://…",
    agent_path="/ws", agent_endpoint="harness.agent.links.ws_pcm:WsPcmEndpoint",
))

register(TransportEntry(
    name="twilio",
    summary="Twilio Media Streams: turnbench plays the phone network (mu-law 8 kHz, JSON over WebSocket)",
    caller="harness.transports.twilio:TwilioTransport",
    url_schemes=("ws", "wss"), url_example="ws://HOST:PORT/PATH or wss://…",
    agent_path="/media-stream", agent_endpoint="harness.agent.links.twilio:TwilioEndpoint",
    options=(TransportOption("--twilio-param", "twilio_params", multiple=True, metavar="KEY=VALUE", default=(),
                             help="twilio: a customParameters entry of the `start` message (repeatable); {call_id}, "
                                  "{uuid} and {run_id} in VALUE become per-call values."),),
    settings=lambda v: {"custom_parameters": parse_pairs(v["twilio_params"], "--twilio-param")},
))

register(TransportEntry(
    name="webrtc",
    summary="an aiortc peer: Opus audio track, a data channel for events; --target is the offer (or WHIP) URL",
    caller="harness.transports.webrtc:WebRtcTransport",
    url_schemes=("http", "https"),
    url_example="http://HOST:PORT/PATH (the agent's WebRTC offer or WHIP endpoint)",
    agent_path="/offer", agent_endpoint="harness.agent.links.webrtc:WebRtcEndpoint",
    requires=("aiortc", "webrtc"), probe=_http_probe,
    options=(
        TransportOption("--webrtc-signalling", "webrtc_signalling", kind="choice", choices=("json", "whip"),
                        default="json", help="webrtc: POST {sdp, type} JSON to the URL, or WHIP (application/sdp, "
                                             "201 + Location, DELETE)."),
        TransportOption("--webrtc-field", "webrtc_fields", multiple=True, metavar="KEY=VALUE", default=(),
                        help="webrtc json: an extra field of the offer the server expects (repeatable); {call_id}, "
                             "{uuid} and {run_id} in VALUE become per-call values, e.g. webrtc_id={uuid}."),
        TransportOption("--webrtc-datachannel", "webrtc_datachannel", default="turnbench", metavar="LABEL|none",
                        help="webrtc: open a data channel with this label (events, hints); `none` for no channel."),
        TransportOption("--webrtc-jitter-buffer-ms", "webrtc_jitter_buffer_ms", kind="float", default=0.0,
                        help="webrtc: a fixed receive buffer before playout (aiortc's own 80 ms buffer is replaced)."),
        TransportOption("--ice-server", "ice_servers", multiple=True, metavar="URL", default=(),
                        help="webrtc: a STUN/TURN server (repeatable). None by default: no traffic leaves for one."),
    ),
    settings=lambda v: {"signalling": v["webrtc_signalling"],
                        "extra_fields": parse_pairs(v["webrtc_fields"], "--webrtc-field"),
                        "datachannel": None if v["webrtc_datachannel"] == "none" else v["webrtc_datachannel"],
                        "jitter_buffer_ms": v["webrtc_jitter_buffer_ms"], "ice_servers": list(v["ice_servers"])},
))
