"""BM25 keyword search over the FTS5 index, with very common terms left out.

FTS5 scores every row that matches any query term, so one common term ("python",
"function") makes a query cost a scan of much of the index. BM25 gives such terms
little weight anyway (idf = ln((N - n + 0.5) / (n + 0.5))), so terms found in more
than `max_df` of the chunks are dropped from the query unless nothing else is left;
at 100k chunks this cut the BM25 cost about threefold (benchmarks/README.md). Terms
are looked up the way the index stores them (stemmed by the same tokenizer, through
a temporary FTS5 table), with document frequencies cached per index generation.
"""

from __future__ import annotations

from pilothouse.knowledge.query import Filters, match_expression, query_words
from pilothouse.knowledge.schema import FTS_TOKENIZER
from pilothouse.knowledge.store import KnowledgeStore

DEFAULT_MAX_DF = 0.1


class KeywordIndex:
    def __init__(self, store: KnowledgeStore):
        self.store = store
        self._ready = False
        self._generation = -1
        self._total = 0
        self._frequency: dict[str, int] = {}

    def _prepare(self) -> None:
        if self._ready:
            return
        conn = self.store.conn
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_terms USING fts5(q, tokenize = "
            f"'{FTS_TOKENIZER}')"
        )
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.query_stems "
            "USING fts5vocab(temp, query_terms, 'instance')"
        )
        conn.execute(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.index_terms "
            "USING fts5vocab(main, chunks_fts, 'row')"
        )
        self._ready = True

    def warm(self) -> None:
        """Prepare the term lookups and read the index statistics now."""
        self.searchable_words("warm", max_df=0.5)

    def searchable_words(self, query: str, max_df: float = DEFAULT_MAX_DF) -> list[str]:
        """The query's words minus those in more than `max_df` of the chunks."""
        words = query_words(query)
        if not words or max_df >= 1.0:
            return words
        with self.store.lock:
            self._prepare()
            conn = self.store.conn
            generation = self.store.generation()
            if generation != self._generation:
                self._frequency.clear()
                self._total = int(conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])
                self._generation = generation
            conn.execute("DELETE FROM temp.query_terms")
            conn.executemany(
                "INSERT INTO temp.query_terms (rowid, q) VALUES (?, ?)", list(enumerate(words))
            )
            stems: dict[int, list[str]] = {}
            for index, term in conn.execute("SELECT doc, term FROM temp.query_stems"):
                stems.setdefault(int(index), []).append(term)
            frequency: dict[str, int] = {}
            for terms in stems.values():
                for term in terms:
                    if term not in self._frequency:
                        row = conn.execute(
                            "SELECT doc FROM temp.index_terms WHERE term = ?", (term,)
                        ).fetchone()
                        self._frequency[term] = int(row[0]) if row else 0
                    frequency[term] = self._frequency[term]
            total = self._total
        return prune_common(words, stems, frequency, max_df * total)

    def search(
        self,
        query: str,
        limit: int,
        filters: Filters | None = None,
        *,
        max_df: float = DEFAULT_MAX_DF,
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score, higher is better), best first."""
        match = match_expression(self.searchable_words(query, max_df))
        if match is None:
            return []
        filtered = filters is not None and not filters.empty
        where, params = (filters or Filters()).sql("d")
        joins = (
            " JOIN chunks c ON c.id = f.rowid JOIN documents d ON d.id = c.document_id"
            if filtered
            else ""
        )
        conditions = f" AND {where}" if filtered else ""
        sql = (
            "SELECT f.rowid, -bm25(chunks_fts, 1.0, 0.5) FROM chunks_fts f"
            f"{joins} WHERE chunks_fts MATCH ?{conditions} "
            "ORDER BY bm25(chunks_fts, 1.0, 0.5) LIMIT ?"
        )
        with self.store.lock:
            rows = self.store.conn.execute(
                sql, [match, *(params if filtered else []), limit]
            ).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]


def prune_common(
    words: list[str], stems: dict[int, list[str]], frequency: dict[str, int], limit: float
) -> list[str]:
    """The words found in at most `limit` chunks (`stems`: each word's index terms by
    its position; `frequency`: chunks per term); the two rarest when none is."""
    # A word made of several tokens is a phrase: as rare as its rarest token.
    word_df = {
        word: min((frequency[t] for t in stems.get(i, [])), default=0)
        for i, word in enumerate(words)
    }
    kept = [w for w in words if word_df[w] <= limit]
    return kept or sorted(words, key=lambda w: word_df[w])[:2]
