"""The service's settings: one small class per layer, composed here and read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.middleware import Limits, Network, parse_networks
from bot.settings import BotSettings, TelegramSettings, ZaloSettings
from index.settings import IndexSettings


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETLUAN_", env_file=".env", extra="ignore")

    api_keys: SecretStr | None = Field(
        default=None, description="comma-separated keys; set = /v1/* needs Bearer"
    )
    cors_origins: str = Field(default="*", description="comma-separated origins allowed to embed the widget")
    rate_limit_per_minute: int = Field(
        default=60, ge=1, description="requests per client per minute on /v1/*"
    )
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, description="largest accepted request body")
    rate_limit_per_conversation: int | None = Field(
        default=None,
        ge=1,
        description="chat requests per conversation per minute; unset = rate_limit_per_minute",
    )
    rate_limit_per_address: int | None = Field(
        default=None, ge=1,
        description="ceiling on the requests per minute of all conversations from one address; "
        "unset = 10 × rate_limit_per_minute",
    )  # fmt: skip
    feedback_per_minute: int = Field(default=20, ge=1, description="feedback posts per client per minute")
    auth_failures_per_minute: int = Field(
        default=10, ge=1, description="wrong API keys per address per minute before every request gets 429"
    )
    trusted_proxies: str = Field(
        default="",
        description="comma-separated addresses or networks of proxies whose X-Forwarded-For is believed; "
        "unset = the header is ignored",
    )
    max_header_bytes: int = Field(
        default=32 * 1024, ge=4096, description="largest request line + headers; larger gets 431 / closed"
    )
    max_headers: int = Field(default=100, ge=10, description="most header lines in one request")
    header_timeout: float = Field(
        default=10.0, gt=0, description="seconds for a client to send its request line and headers"
    )
    body_timeout: float = Field(default=10.0, gt=0, description="seconds for a client to send its whole body")
    keep_alive_timeout: int = Field(
        default=5, ge=1, description="seconds an idle keep-alive connection stays"
    )
    operator_name: str = Field(
        default="", max_length=200,
        description="who runs this service (a provincial office, a Party committee's documentation team), "
        "shown on every page; unset = not shown",
    )  # fmt: skip
    operator_contact: str = Field(
        default="", max_length=200,
        description="how to reach them: an e-mail address, a phone number or a web address; unset = not shown",
    )  # fmt: skip

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # a bad entry fails at start-up, naming it
        return value

    def keys(self) -> list[str]:
        raw = self.api_keys.get_secret_value() if self.api_keys else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

    def limits(self) -> Limits:
        return Limits(
            per_client=self.rate_limit_per_minute,
            per_conversation=self.rate_limit_per_conversation or self.rate_limit_per_minute,
            per_address=self.rate_limit_per_address or 10 * self.rate_limit_per_minute,
            auth_failures=self.auth_failures_per_minute,
            feedback=self.feedback_per_minute,
        )

    def proxies(self) -> list[Network]:
        return parse_networks(self.trusted_proxies)

    def origins(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()] or ["*"]


@dataclass(frozen=True)
class Settings:
    index: IndexSettings
    bot: BotSettings
    api: ApiSettings
    telegram: TelegramSettings
    zalo: ZaloSettings

    @classmethod
    def load(cls, **index_overrides: object) -> Settings:
        index = IndexSettings(**index_overrides)  # type: ignore[arg-type]
        return cls(index, BotSettings(), ApiSettings(), TelegramSettings(), ZaloSettings())
