"""The search index as a LangChain retriever: a query → LangChain Documents carrying the Passage as metadata."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from index.search import SearchFilters, SearchIndex


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
