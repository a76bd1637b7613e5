"""Per-call values in transport options ({call_id}, {uuid}, {run_id})."""

import uuid

import pytest

from harness.errors import InputError
from harness.transports.per_call import check_placeholders, expand
from harness.transports.registry import transport_settings


def test_each_call_gets_its_own_values_and_one_uuid_per_call():
    opts = {"extra_fields": {"webrtc_id": "{uuid}", "echo": "{uuid}", "name": "{run_id}/{call_id}"},
            "signalling": "json", "jitter_buffer_ms": 0.0}
    a, b = expand(opts, "c0000", "r1"), expand(opts, "c0001", "r1")
    assert a["extra_fields"]["name"] == "r1/c0000" and b["extra_fields"]["name"] == "r1/c0001"
    assert a["extra_fields"]["webrtc_id"] == a["extra_fields"]["echo"]  # one uuid per call
    assert a["extra_fields"]["webrtc_id"] != b["extra_fields"]["webrtc_id"]
    uuid.UUID(a["extra_fields"]["webrtc_id"])
    assert opts["extra_fields"]["webrtc_id"] == "{uuid}"  # the spec's own options are untouched
    assert expand({"x": '{"a": 1}', "n": 3}, "c", "r") == {"x": '{"a": 1}', "n": 3}  # JSON braces stay


def test_an_unknown_placeholder_is_refused_naming_the_flag():
    with pytest.raises(InputError, match=r"--webrtc-field: unknown placeholder \{callid\}.*\{call_id\}"):
        transport_settings("webrtc", {"webrtc_fields": ("webrtc_id={callid}",)})
    with pytest.raises(InputError, match=r"--twilio-param: unknown placeholder \{sid\}"):
        transport_settings("twilio", {"twilio_params": ("callSid={sid}",)})
    check_placeholders({"a": ["{uuid}", '{"k": 1}']}, "x")  # known names and JSON are fine
    settings = transport_settings("webrtc", {"webrtc_fields": ("webrtc_id={uuid}",)})
    assert settings["extra_fields"] == {"webrtc_id": "{uuid}"}  # expanded per call, not here
