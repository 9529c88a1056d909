"""The index for LangChain: passages (a query → Documents carrying the Passage as metadata) and tasks
(a TaskBook → Documents carrying the Directive as metadata), as retrievers and a loader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from index.models import Directive
from index.search import SearchFilters, SearchIndex
from index.tasks import TaskBook, TaskQuery
from index.textnorm import fold, normalize, words


class KetLuanRetriever(BaseRetriever):
    """`KetLuanRetriever(index=open_index(settings), k=5)` plugs the hybrid search into any LangChain chain.

    Each Document's page_content is the verbatim passage text; metadata holds the whole Passage (label,
    passage_id, url, source offsets, score), so a chain can cite it exactly as the service does.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: SearchIndex
    k: int = 5
    filters: SearchFilters | None = None

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        k = int(kwargs.get("k", self.k))
        filters = kwargs.get("filters", self.filters)
        return [
            LCDocument(page_content=p.text, metadata=p.model_dump(mode="json"), id=p.passage_id)
            for p in self.index.search(query, k, filters)
        ]


def directive_document(directive: Directive) -> LCDocument:
    """One task as a Document: page_content is the verbatim action; metadata is the whole Directive
    (agencies, partners, deadline, recurring, label, url, source offsets), ids are directive ids."""
    return LCDocument(
        page_content=directive.action, metadata=directive.model_dump(mode="json"), id=directive.directive_id
    )


class KetLuanTaskLoader(BaseLoader):
    """`KetLuanTaskLoader(index.tasks, TaskQuery(agency="Bộ Nội vụ")).load()`: the tasks that match, by
    deadline, one Document each (see `directive_document`)."""

    def __init__(self, book: TaskBook, query: TaskQuery | None = None) -> None:
        self.book = book
        self.query = query or TaskQuery()

    def lazy_load(self) -> Iterator[LCDocument]:
        for directive in self.book.query(self.query):
            yield directive_document(directive)


class KetLuanTaskRetriever(BaseRetriever):
    """Tasks for a question: those matching `filters` (a TaskQuery), ranked by how many of the question's
    words (accents ignored) their action, agencies and deadline share, then by deadline; at most `k`.
    An empty question returns the first `k` by deadline."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    book: TaskBook
    filters: TaskQuery | None = None
    k: int = 10

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        k = int(kwargs.get("k", self.k))
        filters = kwargs.get("filters", self.filters) or TaskQuery()
        tasks = self.book.query(filters)
        wanted = set(words(fold(normalize(query))))
        if wanted:
            scored = [(len(wanted & set(words(_task_text(d)))), n, d) for n, d in enumerate(tasks)]
            tasks = [d for score, _, d in sorted(scored, key=lambda s: (-s[0], s[1])) if score > 0]
        return [directive_document(d) for d in tasks[:k]]


def _task_text(directive: Directive) -> str:
    parts = [directive.action, *directive.agencies, *directive.partners, directive.deadline_text or ""]
    return fold(normalize(" ".join(parts)))
