"""Settings, read from the environment only (nothing is read relative to the code)."""
from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, case_sensitive=False, extra="ignore")

    db_path: str = "/data/munero.sqlite"
    ollama_base_url: str = "http://ollama:11434"
    ollama_model: str = "qwen2.5-coder:3b"
    cors_origins: str = ""
    debug: bool = False
    debug_log_prompts: bool = False
    # Total time budget (seconds) for one model call.
    llm_timeout: float = 120.0
    # Context window sent with every call (the same on every call, so Ollama never reloads the model).
    llm_num_ctx: int = 8192
    # Stream the model answer (NDJSON) instead of waiting for a single JSON document.
    llm_stream: bool = True
    # Timeout of the /api/tags probe used by /health (must stay well under 2 s).
    health_probe_timeout: float = 1.2
    # Seconds a health probe result is reused.
    health_cache_seconds: float = 5.0
    app_state_dir: str = "/state"
    # JSON string or path to a JSON file overriding the detected dataset profile.
    dataset_profile: str = ""
    # Copilot query limits.
    sql_timeout: float = 5.0
    sql_max_rows: int = 500
    sql_default_limit: int = 1000
    sql_max_length: int = 1_000_000
    llm_max_corrections: int = Field(default=2, ge=0, le=5)
    # Build the column store (state dir, memory-mapped) used to answer dashboard queries fast.
    dashboard_cache: bool = True
    # About 60 bytes per row are kept; above this the dashboard stays on SQL.
    dashboard_cache_max_rows: int = 30_000_000
    # The store is read newest days first: the first window covers the default period (90 days),
    # the second the one the KPIs compare it with, so the first dashboard is served from memory early.
    dashboard_cache_first_days: int = Field(default=90, ge=1)
    dashboard_cache_chunk_days: int = Field(default=90, ge=1)
    # Processes reading the file for the store (None: one per core; 0: in the build's own thread).
    dashboard_cache_workers: int | None = Field(default=None, ge=0)
    # The build runs at least this nice (workers and the build thread), so the assistant's and the
    # dashboard's own queries get the CPU first on a small machine.
    dashboard_cache_nice: int = Field(default=10, ge=0, le=19)
    # Milliseconds the build waits after each slice it takes in (0: none): leaves a small machine's
    # CPU to other work, and makes the build's progress observable in tests.
    dashboard_cache_pause_ms: int = Field(default=0, ge=0)

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
