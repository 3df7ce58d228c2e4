"""Deployment settings from `LABFLOW_*` environment variables (contract section 1)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OutboundWebhook(BaseModel):
    url: str
    secret: str
    events: list[str] = Field(default_factory=lambda: ["*"])
    format: Literal["json", "fhir", "hl7v2"] = "json"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABFLOW_", extra="ignore")

    database_url: str = "sqlite:///labflow.db"
    broker_url: str | None = None
    inbound_secrets: dict[str, str] = Field(default_factory=dict)
    outbound_webhooks: list[OutboundWebhook] = Field(default_factory=list)
    lab_profile: str | None = None

    # Pipeline robustness knobs (not part of the external contract).
    max_attempts: int = 5
    sweep_interval_seconds: float = 30.0
    # A message dispatched but not finished after this long is dispatched again.
    stale_after_seconds: float = 60.0
    # A claim on a message older than this is presumed dead (its worker crashed).
    claim_lease_seconds: float = 120.0
    max_body_bytes: int = 1_000_000
    embedded_worker_threads: int = 2

    @field_validator("broker_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
