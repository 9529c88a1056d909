"""The service's error hierarchy; only api/ turns these into HTTP statuses."""

from __future__ import annotations


class KetLuanError(Exception):
    """Base of every expected failure; `code` is the stable machine-readable name."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadCorpus(KetLuanError):
    """A corpus folder or file cannot be read."""

    code = "bad_corpus"


class IndexNotReady(KetLuanError):
    """The index is missing, stale, corrupt, or still loading."""

    code = "index_not_ready"


class EmbedderUnavailable(KetLuanError):
    """The configured embedding model cannot be loaded offline."""

    code = "embedder_unavailable"


class BadQuery(KetLuanError):
    """A query or filter the service cannot use."""

    code = "bad_request"


class NoEvidence(KetLuanError):
    """The corpus does not support an answer."""

    code = "no_evidence"


class UpstreamError(KetLuanError):
    """An outside service (LLM endpoint, Telegram, Zalo, Redis) failed."""

    code = "upstream_error"


class NotFound(KetLuanError):
    """A document or passage id that does not exist."""

    code = "not_found"


class UnsupportedMedia(KetLuanError):
    """Uploaded bytes that are not a PDF, DOCX, HTML page or UTF-8 text (judged by content, not by name)."""

    code = "unsupported_media"


class DocumentTooLarge(KetLuanError):
    """A document (uploaded or fetched) above the configured size."""

    code = "too_large"


class BadDocument(KetLuanError):
    """A document that cannot be read (a damaged PDF or DOCX, a page with no text) or a URL refused."""

    code = "bad_document"


class PulledIndex(KetLuanError):
    """An operator change asked of a host that serves an index pulled from a published bundle: it belongs on
    the build host, whose publish reaches every host."""

    code = "pulled_index"
