"""Settings of the answering layer and the chat channels, read from KETLUAN_* variables at start-up."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

_CONFIG = SettingsConfigDict(env_prefix="KETLUAN_", env_file=".env", extra="ignore")


class BotSettings(BaseSettings):
    model_config = _CONFIG

    llm_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; unset = extractive"
    )
    llm_model: str = Field(default="gpt-4o-mini", description="model name sent to the LLM endpoint")
    llm_api_key: SecretStr | None = Field(default=None, description="API key for the LLM endpoint")
    llm_timeout: float = Field(default=20.0, gt=0, description="seconds before the LLM answer falls back")
    history_turns: int = Field(
        default=6, ge=0, le=50, description="turns of a conversation kept for follow-ups"
    )
    redis_url: str | None = Field(default=None, description="shared conversation store; unset = local SQLite")
    answer_cache_size: int = Field(
        default=4096,
        ge=0,
        description="answers (and readings of questions) kept per process for questions asked again; 0 = none",
    )
    answer_cache_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="how long a shared cached answer is kept (Redis: every replica; else the workers of a host)",
    )
    public_url: str = Field(default="http://127.0.0.1:8000", description="absolute base for citation links")
    state_retention_days: float = Field(
        default=30.0, gt=0, description="conversations untouched this long are purged from the state store"
    )
    analytics_enabled: bool = Field(
        default=True, description="record every question for the operator's console (false = record nothing)"
    )
    analytics_retention_days: float = Field(
        default=90.0, gt=0, description="recorded questions older than this are purged"
    )
    analytics_max_rows: int = Field(default=100_000, ge=100, description="most recorded questions kept")
    reminder_days_before: int = Field(
        default=3, ge=0, le=60, description="days before a followed task's deadline that the bots remind"
    )
    reminder_check_minutes: float = Field(
        default=30.0, gt=0, description="how often the bots look for due reminders"
    )


class TelegramSettings(BaseSettings):
    model_config = _CONFIG

    telegram_bot_token: SecretStr | None = Field(default=None, description="bot token from @BotFather")
    telegram_webhook_secret: SecretStr | None = Field(
        default=None, description="X-Telegram-Bot-Api-Secret-Token"
    )
    telegram_api_base: str = Field(default="https://api.telegram.org", description="Bot API base URL")


class ZaloSettings(BaseSettings):
    model_config = _CONFIG

    zalo_app_id: str | None = Field(default=None, description="Zalo app id (part of the webhook signature)")
    zalo_oa_secret_key: SecretStr | None = Field(default=None, description="OA secret key for signatures")
    zalo_access_token: SecretStr | None = Field(default=None, description="OA access token")
    zalo_refresh_token: SecretStr | None = Field(default=None, description="refresh token for expired tokens")
    zalo_app_secret: SecretStr | None = Field(
        default=None, description="app secret, needed to refresh tokens"
    )
    zalo_api_base: str = Field(default="https://openapi.zalo.me", description="OA API base URL")
    zalo_oauth_base: str = Field(
        default="https://oauth.zaloapp.com", description="OAuth base for token refresh"
    )
    zalo_event_max_age_minutes: float = Field(
        default=5.0,
        gt=0,
        le=24 * 60,  # never longer than delivery dedupe remembers an event (bot.channels.SEEN_TTL_SECONDS)
        description="webhook events whose timestamp is further from now are refused",
    )
