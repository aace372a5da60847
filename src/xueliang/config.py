"""One settings tree for the whole platform (Frigate-style: one pydantic model, extra="forbid").

Sources, highest first: ``XUELIANG_*`` environment variables (nested with ``__``, e.g.
``XUELIANG_DATABASE__URL``), then a TOML file, then defaults that work with no file at all.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///./var/xueliang.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1, le=500)


class ApiConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    #: Lifetime of a login token, seconds.
    token_ttl: int = Field(default=8 * 3600, ge=60)
    #: Lifetime of a signed media URL token (for players that cannot send headers), seconds.
    media_token_ttl: int = Field(default=300, ge=10)
    page_size_max: int = Field(default=1000, ge=10)
    #: Largest upload accepted by the import endpoints, bytes.
    upload_max_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)


class SipConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=5060, ge=0, le=65535)
    #: The platform's own 20-digit GB/T 28181 ID.
    id: str = "34020000002000000001"
    #: SIP domain / digest realm; default: the first 10 digits of ``id``.
    domain: str = ""
    #: Platform-wide device password (per-device passwords override it).
    password: str = "12345678"
    #: What to do with a device that authenticates but is not in the registry.
    admission: Literal["open", "pending", "reject"] = "open"
    keepalive_interval: float = Field(default=60.0, gt=0)
    keepalive_misses: int = Field(default=3, ge=1)
    #: Wrong passwords before a temporary ban, and its length in seconds.
    ban_after_failures: int = Field(default=5, ge=1)
    ban_seconds: float = Field(default=300.0, ge=0)
    #: Requests per second accepted from one source address before rate limiting.
    rate_limit_per_address: float = Field(default=200.0, gt=0)
    request_timeout: float = Field(default=8.0, gt=0)
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id_is_gb(cls, v: str) -> str:
        if len(v) != 20 or not v.isdigit():
            raise ValueError("must be a 20-digit GB/T 28181 ID")
        return v

    @model_validator(mode="after")
    def _default_domain(self) -> SipConfig:
        if not self.domain:
            self.domain = self.id[:10]
        return self


class MediaConfig(_Section):
    host: str = "127.0.0.1"
    #: The address put in SDP offers; default: ``host``.
    announce_ip: str = ""
    rtp_port: int = Field(default=30000, ge=0, le=65535)
    rtp_tcp_port: int = Field(default=30000, ge=0, le=65535)
    #: Seconds a stream lives after its last viewer leaves.
    idle_stop_seconds: float = Field(default=15.0, ge=0)
    #: Seconds without RTP before a stream is declared dead.
    rtp_timeout: float = Field(default=10.0, gt=0)
    #: G.711 audio: transcode to AAC, or drop.
    g711: Literal["aac", "drop"] = "drop"
    max_transcodes: int = Field(default=2, ge=0)
    enabled: bool = True

    @model_validator(mode="after")
    def _default_announce(self) -> MediaConfig:
        if not self.announce_ip:
            self.announce_ip = self.host
        return self


class StorageConfig(_Section):
    var_dir: Path = Path("./var")


class Settings(BaseSettings):
    """The whole configuration. Unknown keys are errors, named in the message."""

    model_config = SettingsConfigDict(
        env_prefix="XUELIANG_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
    )

    database: DatabaseConfig = DatabaseConfig()
    api: ApiConfig = ApiConfig()
    sip: SipConfig = SipConfig()
    media: MediaConfig = MediaConfig()
    storage: StorageConfig = StorageConfig()
    #: Secret for signing tokens; generated and kept under var/ when empty.
    secret_key: str = ""
    #: First administrator, created on first start if no user exists.
    bootstrap_admin: str = ""
    bootstrap_password: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = settings_cls.model_config.get("toml_file")
        if toml:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)


class ConfigError(Exception):
    """A configuration problem, with every bad key named."""


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(root)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"  {key}: {msg}" + (f" (got {e['input']!r})" if e["type"] != "extra_forbidden" and not isinstance(e["input"], dict) else ""))
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (TOML), the environment and ``overrides``.

    Raises :class:`ConfigError` naming every bad key.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"configuration file not found: {p}")
        try:
            tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {p} is not valid TOML: {exc}") from exc

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=str(path) if path else None)

    try:
        return _FileSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
