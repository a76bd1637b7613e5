"""The built-in transports, registered like any other (see `registry`)."""

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


def _realtime_settings(v: dict) -> dict:
    return {"protocol": v["realtime_protocol"], "audio_format": v["realtime_format"],
            "turn_detection": v["realtime_turn_detection"], "silence_ms": v["realtime_silence_ms"],
            "model": v["realtime_model"] or None, "transcription_model": v["realtime_transcription_model"] or None,
            "extra_headers": parse_pairs(v["realtime_headers"], "--realtime-header")}


register(TransportEntry(
    name="openai-realtime",
    summary="the OpenAI Realtime protocol over WebSocket (GA or beta events; pcm16 24 kHz or G.711), "
            "OpenAI's API or any compatible server; the API key from $OPENAI_API_KEY",
    caller="harness.transports.openai_realtime:OpenAIRealtimeTransport",
    url_schemes=("ws", "wss"), url_example="wss://api.openai.com/v1/realtime or ws://HOST:PORT/v1/realtime",
    agent_path="/v1/realtime", agent_endpoint="harness.agent.links.openai_realtime:RealtimeEndpoint",
    secret_settings=("extra_headers",),
    options=(
        TransportOption("--realtime-protocol", "realtime_protocol", kind="choice", choices=("ga", "beta"),
                        default="ga", help="openai-realtime: the GA event names and session shape, or the beta "
                                           "ones (sends `OpenAI-Beta: realtime=v1`)."),
        TransportOption("--realtime-format", "realtime_format", kind="choice",
                        choices=("pcm16", "g711_ulaw", "g711_alaw"), default="pcm16",
                        help="openai-realtime: audio both ways: PCM16 24 kHz, or G.711 mu-law / A-law 8 kHz."),
        TransportOption("--realtime-turn-detection", "realtime_turn_detection", kind="choice",
                        choices=("server_vad", "semantic_vad", "none"), default="server_vad",
                        help="openai-realtime: the server's turn detection, or none (turnbench commits the "
                             "buffer and asks for a response when each turn is spoken)."),
        TransportOption("--realtime-silence-ms", "realtime_silence_ms", kind="float", default=None,
                        help="openai-realtime: server_vad's silence_duration_ms (default: the server's own)."),
        TransportOption("--realtime-model", "realtime_model", default=None, metavar="MODEL",
                        help="openai-realtime: added to the URL as ?model= (unless the URL has one)."),
        TransportOption("--realtime-transcription-model", "realtime_transcription_model", default=None,
                        metavar="MODEL", help="openai-realtime: ask for input transcription with this model "
                                              "(transcripts and WER), e.g. gpt-4o-mini-transcribe."),
        TransportOption("--realtime-header", "realtime_headers", multiple=True, metavar="KEY=VALUE", default=(),
                        help="openai-realtime: an extra header of the WebSocket upgrade (repeatable; values are "
                             "never recorded)."),
    ),
    settings=_realtime_settings,
))
