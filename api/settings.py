"""The service's settings: one small class per layer, composed here and read once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    def keys(self) -> list[str]:
        raw = self.api_keys.get_secret_value() if self.api_keys else ""
        return [k.strip() for k in raw.split(",") if k.strip()]

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
