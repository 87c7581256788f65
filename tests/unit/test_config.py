"""Configuration (OPERATIONS.md 2, D1, D2, D22, D22a): defaults, parsing, clear errors."""

from __future__ import annotations

import pytest

from accord.config import ConfigError, load_settings

SFU = {
    "ACCORD_MODE": "sfu",
    "ACCORD_MAIN_URL": "http://main:39099",
    "ACCORD_SFU_NODE_ID": "n1",
    "ACCORD_SFU_REGION": "eu",
    "ACCORD_SFU_CAPACITY": "100",
    "ACCORD_SFU_ENDPOINT": "ws://sfu-1:4000/ws",
    "ACCORD_SFU_SECRET": "s3cret",
}


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.mode == "main"
    assert settings.port == 39099
    assert settings.bind_host == "0.0.0.0"
    assert settings.database_path == "data/accord.db"
    assert settings.voice_backend == "custom"
    assert settings.test_mode is False
    assert settings.cors_origins == ("*",)
    assert settings.token_ttl_days == 30
    assert settings.storage_dir == "data/files"
    assert settings.rate_limit.capacity == 70
    assert settings.auth_ip_rate.capacity == 15


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:data/x.db?mode=rwc", "data/x.db"),
        ("sqlite://rel/x.db", "rel/x.db"),
        ("sqlite:///abs/x.db", "/abs/x.db"),
        ("sqlite::memory:", ":memory:"),
    ],
)
def test_database_urls(url: str, path: str) -> None:
    assert load_settings({"DATABASE_URL": url}).database_path == path


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PORT": "abc"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PORT": "-1"}, "PORT"),
        ({"ACCORD_MODE": "sfuu"}, "ACCORD_MODE"),
        ({"ACCORD_VOICE_BACKEND": "jitsi"}, "ACCORD_VOICE_BACKEND"),
        ({"ACCORD_VOICE_BACKEND": "livekit"}, "LIVEKIT_URL"),
        ({"ACCORD_VOICE_BACKEND": "livekit", "LIVEKIT_URL": "http://lk"}, "LIVEKIT_API_KEY"),
        ({"DATABASE_URL": "postgres://x"}, "DATABASE_URL"),
        ({"ACCORD_TEST_MODE": "maybe"}, "ACCORD_TEST_MODE"),
        ({"ACCORD_PUBLIC_URL": "chat.example"}, "ACCORD_PUBLIC_URL"),
        ({"ACCORD_TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "ACCORD_TRUSTED_PROXIES"),
        ({"ACCORD_AUTH_IP_RATE": "lots"}, "ACCORD_AUTH_IP_RATE"),
        ({"ACCORD_TOKEN_TTL_DAYS": "0"}, "ACCORD_TOKEN_TTL_DAYS"),
        ({"ACCORD_LOG": "accord=loud"}, "ACCORD_LOG"),
        ({"ACCORD_BIND": "not-an-ip"}, "ACCORD_BIND"),
        ({**SFU, "ACCORD_SFU_CAPACITY": "many"}, "ACCORD_SFU_CAPACITY"),
        ({**SFU, "ACCORD_SFU_CAPACITY": ""}, "ACCORD_SFU_CAPACITY"),
        ({**SFU, "ACCORD_MAIN_URL": ""}, "ACCORD_MAIN_URL"),
        ({**SFU, "ACCORD_SFU_HEARTBEAT_INTERVAL": "60"}, "ACCORD_SFU_HEARTBEAT_INTERVAL"),
        ({**SFU, "ACCORD_SFU_ENDPOINT": "http://x"}, "ACCORD_SFU_ENDPOINT"),
        ({**SFU, "ACCORD_SFU_PUBLIC_IP": "0.0.0.0"}, "ACCORD_SFU_PUBLIC_IP"),
        ({**SFU, "ACCORD_SFU_SECRET": ""}, "ACCORD_SFU_SECRET"),
    ],
)
def test_invalid_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.variable == variable
    assert variable in str(caught.value)


def test_sfu_and_livekit_settings() -> None:
    settings = load_settings(SFU)
    assert settings.sfu is not None
    assert settings.sfu.capacity == 100
    assert settings.sfu.heartbeat_interval_s == 25
    lk = load_settings(
        {
            "ACCORD_VOICE_BACKEND": "LiveKit",
            "LIVEKIT_URL": "wss://lk.example",
            "LIVEKIT_INTERNAL_URL": "http://livekit:7880",
            "LIVEKIT_API_KEY": "k",
            "LIVEKIT_API_SECRET": "s",
        }
    )
    assert lk.livekit is not None
    assert (lk.livekit.url, lk.livekit.internal_url) == ("wss://lk.example", "http://livekit:7880")


def test_rates_and_lists() -> None:
    settings = load_settings(
        {
            "ACCORD_AUTH_IP_RATE": "20/min + 10",
            "ACCORD_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
            "ACCORD_CORS_ORIGINS": "https://a.example, https://b.example",
            "RUST_LOG": "accordserver=debug,tower_http=debug",
        }
    )
    assert settings.auth_ip_rate.capacity == 30
    assert abs(settings.auth_ip_rate.refill_per_s - 20 / 60) < 1e-9
    assert len(settings.trusted_proxies) == 2
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.log_filter == "accordserver=debug,tower_http=debug"
