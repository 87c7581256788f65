"""SRTP helpers and the pylibsrtp private handles the Cython loop depends on (STACK-NOTES 5).

If pylibsrtp is upgraded and moves `_binding.ffi`/`lib` or `Session._srtp`, these tests fail
loudly before the hot loop can crash. Also checks which forwarder `forward.py` selects.
"""

from __future__ import annotations

import importlib.metadata

import pylibsrtp
import pytest

from accord.media import forward, srtp


def test_pylibsrtp_is_the_pinned_version() -> None:
    assert importlib.metadata.version("pylibsrtp") == "1.0.0"


def test_private_cffi_binding_is_where_the_hot_loop_expects_it() -> None:
    from pylibsrtp._binding import ffi, lib

    for name in ("srtp_protect", "srtp_unprotect", "srtp_protect_rtcp", "srtp_unprotect_rtcp"):
        assert int(ffi.cast("uintptr_t", ffi.addressof(lib, name))) != 0
    handles = srtp.c_handles()
    pointers = {handles.protect, handles.unprotect, handles.protect_rtcp, handles.unprotect_rtcp}
    assert len(pointers) == 4
    assert 0 not in pointers


def test_session_keeps_its_srtp_t_in_underscore_srtp() -> None:
    session = srtp.make_tx_session("AEAD_AES_128_GCM", srtp.generate_key("AEAD_AES_128_GCM"))
    assert hasattr(session, "_srtp")
    assert srtp.session_pointer(session) != 0
    # The C signature is libsrtp 2.x: in place, with SRTP_MAX_TRAILER_LEN spare bytes.
    assert pylibsrtp.SRTP_MAX_TRAILER_LEN == srtp.SRTP_MAX_TRAILER_BYTES
    assert pylibsrtp.SRTP_MAX_SRTCP_TRAILER_LEN == srtp.SRTCP_MAX_TRAILER_BYTES


def test_rx_session_only_accepts_its_own_ssrc() -> None:
    key = srtp.generate_key("AES_CM_128_HMAC_SHA1_80")
    tx = srtp.make_tx_session("AES_CM_128_HMAC_SHA1_80", key)
    rx = srtp.make_rx_session("AES_CM_128_HMAC_SHA1_80", key, 7)
    mine = tx.protect(b"\x80\x6f\x00\x01" + bytes(4) + b"\x00\x00\x00\x07" + bytes(20))
    theirs = tx.protect(b"\x80\x6f\x00\x01" + bytes(4) + b"\x00\x00\x00\x08" + bytes(20))
    assert len(rx.unprotect(mine)) == 32
    with pytest.raises(pylibsrtp.Error):
        rx.unprotect(theirs)


def test_the_cython_forwarder_is_built() -> None:
    # CI builds the extension; a silent fallback to the reference would hide a broken build.
    assert "cython" in forward.IMPLEMENTATIONS


def test_pure_python_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCORD_PURE_PYTHON", "1")
    assert forward.implementation_name() == "reference"
    monkeypatch.delenv("ACCORD_PURE_PYTHON")
    assert forward.implementation_name() == "cython"
