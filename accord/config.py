"""Settings: every environment variable of OPERATIONS.md and DECISIONS.md, read once at start-up.

`load_settings(environ)` validates everything and raises `ConfigError(variable, reason)` on the
first problem; `__main__` turns that into one line on stderr and exit code 2 (D22). A value that
is set but invalid is never silently replaced by a default.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

MODES = ("main", "sfu")
VOICE_BACKENDS = ("custom", "livekit")
_DEFAULT_DATABASE_URL = "sqlite:data/accord.db?mode=rwc"


class ConfigError(Exception):
    """A configuration problem: names the variable and says what is wrong."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class RateSpec:
    """A token bucket: `capacity` tokens, refilled continuously at `refill_per_s`."""

    capacity: int
    refill_per_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class SfuSettings:
    main_url: str
    node_id: str
    region: str
    capacity: int
    endpoint: str
    heartbeat_interval_s: int
    udp_port: int
    public_ip: str | None
    workers: int
    control_url: str | None
    signal_heartbeat_ms: int = 5000


@dataclasses.dataclass(frozen=True, slots=True)
class LiveKitSettings:
    url: str
    internal_url: str
    api_key: str
    api_secret: str
    timeout_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    mode: str = "main"
    bind_host: str = "0.0.0.0"
    port: int = 39099
    database_path: str = "data/accord.db"
    log_filter: str = "accord=info,hypercorn=warning"
    voice_backend: str = "custom"
    livekit: LiveKitSettings | None = None
    test_mode: bool = False
    test_mode_remote: bool = False
    public_url: str | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    cors_origins: tuple[str, ...] = ("*",)
    rate_limit: RateSpec = RateSpec(70, 70 / 60)
    auth_ip_rate: RateSpec = RateSpec(15, 10 / 60)
    rate_limit_max_buckets: int = 100_000
    token_ttl_days: int = 30
    default_space: str | None = None
    storage_dir: str = "data/files"
    max_upload_bytes: int = 100 * 1024 * 1024
    max_file_bytes: int = 25 * 1024 * 1024
    max_json_bytes: int = 2 * 1024 * 1024
    voice_grace_s: float = 15.0
    rest_voice_ttl_s: float = 60.0
    sfu_secret: str | None = None
    sfu_reaper_interval_s: float = 30.0
    sfu_stale_after_s: float = 60.0
    gateway_heartbeat_ms: int = 45_000
    gateway_identify_timeout_s: float = 30.0
    gateway_resume_window_s: float = 60.0
    gateway_queue_size: int = 512
    gateway_max_frame_bytes: int = 64 * 1024
    gateway_inbound_per_minute: int = 120
    gateway_connect_rate: RateSpec = RateSpec(60, 1.0)
    gateway_replay_frames: int = 256
    gateway_bot_privileged_intents: bool = True
    gateway_max_sessions_per_user: int = 10
    worker_id: int = 0
    pure_python: bool = False
    sfu: SfuSettings | None = None

    @property
    def is_test_mode(self) -> bool:
        return self.test_mode


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the whole configuration. Raises ConfigError on the first problem."""
    env = _Env(environ)
    mode = env.choice("ACCORD_MODE", MODES, "main")
    sfu = _load_sfu(env) if mode == "sfu" else None
    backend = env.choice("ACCORD_VOICE_BACKEND", VOICE_BACKENDS, "custom")
    livekit = _load_livekit(env) if backend == "livekit" and mode == "main" else None
    port = env.integer("PORT", 39099, minimum=0, maximum=65535)
    bind_host = env.text("ACCORD_BIND", "0.0.0.0")
    try:
        ipaddress.ip_address(bind_host)
    except ValueError:
        if bind_host != "localhost":
            raise ConfigError("ACCORD_BIND", f"not an IP address: {bind_host!r}") from None
    return Settings(
        mode=mode,
        bind_host=bind_host,
        port=port,
        database_path=_database_path(env.text("DATABASE_URL", _DEFAULT_DATABASE_URL)),
        log_filter=_log_filter(env),
        voice_backend=backend,
        livekit=livekit,
        test_mode=env.flag("ACCORD_TEST_MODE"),
        test_mode_remote=env.flag("ACCORD_TEST_MODE_REMOTE"),
        public_url=env.url("ACCORD_PUBLIC_URL", ("http", "https")),
        trusted_proxies=_networks(env),
        cors_origins=tuple(
            o.strip() for o in env.text("ACCORD_CORS_ORIGINS", "*").split(",") if o.strip()
        )
        or ("*",),
        rate_limit=_rate(env, "ACCORD_RATE_LIMIT", "70/min"),
        auth_ip_rate=_rate(env, "ACCORD_AUTH_IP_RATE", "10/min+5"),
        token_ttl_days=env.integer("ACCORD_TOKEN_TTL_DAYS", 30, minimum=1, maximum=3650),
        default_space=env.optional("ACCORD_DEFAULT_SPACE"),
        storage_dir=env.text("ACCORD_STORAGE_DIR", "data/files"),
        max_upload_bytes=env.integer(
            "ACCORD_MAX_UPLOAD_BYTES", 100 * 1024 * 1024, minimum=1024, maximum=1 << 40
        ),
        max_file_bytes=env.integer(
            "ACCORD_MAX_FILE_BYTES", 25 * 1024 * 1024, minimum=1024, maximum=1 << 40
        ),
        voice_grace_s=env.number("ACCORD_VOICE_GRACE_S", 15.0, minimum=0, maximum=3600),
        rest_voice_ttl_s=env.number("ACCORD_REST_VOICE_TTL_S", 60.0, minimum=1, maximum=86400),
        sfu_secret=env.optional("ACCORD_SFU_SECRET"),
        sfu_reaper_interval_s=env.number(
            "ACCORD_SFU_REAPER_INTERVAL_S", 30.0, minimum=0.05, maximum=3600
        ),
        sfu_stale_after_s=env.number("ACCORD_SFU_STALE_AFTER_S", 60.0, minimum=0.1, maximum=86400),
        gateway_heartbeat_ms=env.integer(
            "ACCORD_GATEWAY_HEARTBEAT_MS", 45_000, minimum=100, maximum=600_000
        ),
        gateway_identify_timeout_s=env.number(
            "ACCORD_GATEWAY_IDENTIFY_TIMEOUT_S", 30.0, minimum=0.1, maximum=600
        ),
        gateway_resume_window_s=env.number(
            "ACCORD_GATEWAY_RESUME_WINDOW_S", 60.0, minimum=0.1, maximum=3600
        ),
        gateway_queue_size=env.integer(
            "ACCORD_GATEWAY_QUEUE_SIZE", 512, minimum=8, maximum=100_000
        ),
        gateway_max_frame_bytes=env.integer(
            "ACCORD_GATEWAY_MAX_FRAME_BYTES", 64 * 1024, minimum=1024, maximum=1024 * 1024
        ),
        gateway_inbound_per_minute=env.integer(
            "ACCORD_GATEWAY_INBOUND_PER_MINUTE", 120, minimum=1, maximum=1_000_000
        ),
        gateway_connect_rate=_rate(env, "ACCORD_GATEWAY_CONNECT_RATE", "60/min+60"),
        gateway_replay_frames=env.integer(
            "ACCORD_GATEWAY_REPLAY_FRAMES", 256, minimum=0, maximum=100_000
        ),
        gateway_bot_privileged_intents=not env.flag("ACCORD_GATEWAY_RESTRICT_BOT_INTENTS"),
        gateway_max_sessions_per_user=env.integer(
            "ACCORD_GATEWAY_MAX_SESSIONS_PER_USER", 10, minimum=1, maximum=10_000
        ),
        worker_id=env.integer("ACCORD_WORKER_ID", 0, minimum=0, maximum=1023),
        pure_python=env.flag("ACCORD_PURE_PYTHON"),
        sfu=sfu,
    )


def _load_sfu(env: _Env) -> SfuSettings:
    main_url = env.url("ACCORD_MAIN_URL", ("http", "https"), required=True)
    assert main_url is not None
    node_id = env.required("ACCORD_SFU_NODE_ID")
    region = env.required("ACCORD_SFU_REGION")
    capacity = env.integer("ACCORD_SFU_CAPACITY", None, minimum=1, maximum=1_000_000)
    endpoint = env.url("ACCORD_SFU_ENDPOINT", ("ws", "wss"), required=True)
    assert endpoint is not None
    heartbeat = env.integer("ACCORD_SFU_HEARTBEAT_INTERVAL", 25, minimum=1, maximum=59)
    public_ip = env.optional("ACCORD_SFU_PUBLIC_IP")
    if public_ip is not None:
        try:
            address = ipaddress.ip_address(public_ip)
        except ValueError:
            raise ConfigError("ACCORD_SFU_PUBLIC_IP", "not an IP address") from None
        if address.is_unspecified:
            raise ConfigError("ACCORD_SFU_PUBLIC_IP", "a wildcard address cannot be advertised")
    env.required("ACCORD_SFU_SECRET")
    return SfuSettings(
        main_url=main_url.rstrip("/"),
        node_id=node_id,
        region=region,
        capacity=capacity,
        endpoint=endpoint,
        heartbeat_interval_s=heartbeat,
        udp_port=env.integer("ACCORD_SFU_UDP_PORT", 4100, minimum=0, maximum=65535),
        public_ip=public_ip,
        workers=env.integer("ACCORD_SFU_WORKERS", 1, minimum=1, maximum=64),
        control_url=env.url("ACCORD_SFU_CONTROL_URL", ("http", "https")),
        signal_heartbeat_ms=env.integer(
            "ACCORD_SFU_SIGNAL_HEARTBEAT_MS", 5000, minimum=100, maximum=120_000
        ),
    )


def _load_livekit(env: _Env) -> LiveKitSettings:
    url = env.required("LIVEKIT_URL")
    key = env.required("LIVEKIT_API_KEY")
    secret = env.required("LIVEKIT_API_SECRET")
    external = env.optional("LIVEKIT_EXTERNAL_URL") or url
    internal = env.optional("LIVEKIT_INTERNAL_URL") or url
    for name, value in (("LIVEKIT_INTERNAL_URL", internal),):
        if urlsplit(value).scheme not in ("http", "https", "ws", "wss"):
            raise ConfigError(name, f"not an http(s) or ws(s) URL: {value!r}")
    return LiveKitSettings(
        url=external,
        internal_url=internal,
        api_key=key,
        api_secret=secret,
        timeout_s=env.number("LIVEKIT_TIMEOUT_S", 5.0, minimum=0.1, maximum=120),
    )


def _database_path(url: str) -> str:
    """D2: `sqlite:path`, `sqlite://path`, `sqlite:///abs/path`, `sqlite::memory:`."""
    if not url.startswith("sqlite:"):
        raise ConfigError("DATABASE_URL", "only sqlite: URLs are supported")
    rest = url[len("sqlite:") :].split("?", 1)[0]
    if rest == ":memory:":
        return ":memory:"
    if rest.startswith("//"):
        rest = rest[2:]
    if not rest:
        raise ConfigError("DATABASE_URL", "no database path")
    return rest


def _log_filter(env: _Env) -> str:
    raw = env.optional("ACCORD_LOG") or env.optional("RUST_LOG")
    if raw is None:
        return "accord=info,hypercorn=warning"
    levels = {"trace", "debug", "info", "warn", "warning", "error", "off"}
    for directive in raw.split(","):
        directive = directive.strip()
        if not directive:
            continue
        level = directive.rsplit("=", 1)[-1].strip().lower()
        if level not in levels:
            name = "ACCORD_LOG" if env.optional("ACCORD_LOG") else "RUST_LOG"
            raise ConfigError(name, f"unknown log level in {directive!r}")
    return raw


def _networks(env: _Env) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = env.optional("ACCORD_TRUSTED_PROXIES")
    if not raw:
        return ()
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ConfigError(
                "ACCORD_TRUSTED_PROXIES", f"not an address or CIDR: {part!r}"
            ) from None
    return tuple(out)


_RATE_RE = re.compile(r"^\s*(\d+)\s*(?:/\s*(s|sec|m|min|h|hour))?\s*(?:\+\s*(\d+))?\s*$")


def _rate(env: _Env, name: str, default: str) -> RateSpec:
    raw = env.text(name, default)
    match = _RATE_RE.match(raw)
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(name, f"expected '<count>/min[+<burst>]', got {raw!r}")
    count = int(match.group(1))
    per = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}[match.group(2) or "min"]
    burst = int(match.group(3) or 0)
    return RateSpec(capacity=count + burst, refill_per_s=count / per)


class _Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def optional(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def required(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ConfigError(name, "is required but not set")
        return value

    def text(self, name: str, default: str) -> str:
        value = self.optional(name)
        return default if value is None else value

    def flag(self, name: str) -> bool:
        value = self.optional(name)
        if value is None:
            return False
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"expected true or false, got {value!r}")

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.optional(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return lowered

    def integer(self, name: str, default: int | None, *, minimum: int, maximum: int) -> int:
        value = self.optional(name)
        if value is None:
            if default is None:
                raise ConfigError(name, "is required but not set")
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {number}")
        return number

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.optional(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
        return number

    def url(self, name: str, schemes: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.required(name) if required else self.optional(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ConfigError(name, f"must be a {'/'.join(schemes)} URL, got {value!r}")
        try:
            _ = parts.port
        except ValueError:
            raise ConfigError(name, f"has an invalid port: {value!r}") from None
        return value


def storage_path(settings: Settings) -> Path:
    return Path(settings.storage_dir)
