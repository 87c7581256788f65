"""Fixtures for the media tests: every forwarder test runs against each implementation.

`forwarder` is a started forwarder on 127.0.0.1:0, parametrized over
`accord.media.forward.IMPLEMENTATIONS` (the Cython loop and the pure-Python reference), and
stopped after the test. Clients live in `tests/media/media_client.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from accord.media.forward import IMPLEMENTATIONS, ForwarderApi, ForwarderFactory


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def forwarder_factory(request: pytest.FixtureRequest) -> ForwarderFactory:
    factory: ForwarderFactory = IMPLEMENTATIONS[request.param]
    return factory


@pytest.fixture
def forwarder(forwarder_factory: ForwarderFactory) -> Iterator[ForwarderApi]:
    fwd = forwarder_factory("127.0.0.1", 0)
    fwd.start()
    try:
        yield fwd
    finally:
        fwd.stop()


@pytest.fixture(params=["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"])
def profile(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
