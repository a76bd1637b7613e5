"""G.711 mu-law against known code points and its error bound."""

import numpy as np

from harness.audio import mulaw


def test_known_code_points():
    assert mulaw.encode(np.array([0], np.int16)) == b"\xff"
    assert mulaw.encode(np.array([-1], np.int16)) == b"\x7f"
    assert mulaw.encode(np.array([32767], np.int16)) == b"\x80"
    assert mulaw.encode(np.array([-32768], np.int16)) == b"\x00"


def test_roundtrip_error_is_within_a_quantisation_step():
    x = np.arange(-32768, 32768, 7, dtype=np.int32).astype(np.int16)
    y = mulaw.decode(mulaw.encode(x)).astype(np.int32)
    err = np.abs(y - x)
    assert (err <= np.maximum(8, np.abs(x.astype(np.int32)) // 16)).all()


def test_tables_equal_the_formula_for_every_code():
    every = np.arange(65536, dtype=np.uint16).view(np.int16)
    assert mulaw.encode(every) == mulaw.encode_computed(every)
    codes = bytes(range(256))
    assert np.array_equal(mulaw.decode(codes), mulaw.decode_computed(codes))
