"""Does reranking with a local chat model as yes/no judge help? nDCG@10 of the default
hybrid search with and without `ModelRelevanceJudge` on the embedded model, on the
first `--questions-limit` benchmark questions. Slow (one model call per passage):
run it with `nice`.

    nice python benchmarks/retrieval/rerank.py --db /tmp/pilothouse-bench/kb.sqlite3 \
        --corpus /tmp/pilothouse-bench/corpus --home .cache/test-home \
        --model qwen2.5-coder-0.5b --questions-limit 40 --top-n 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from metrics import ndcg
from run import load_questions

from pilothouse.config import Settings
from pilothouse.copilot.rerank import ModelRelevanceJudge
from pilothouse.knowledge import KnowledgeBase, RerankSettings, SearchOptions
from pilothouse.models.local import LocalModel
from pilothouse.models.providers import resolve_endpoint

HERE = Path(__file__).parent


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True, help="data dir with the weights")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    parser.add_argument("--questions-limit", type=int, default=40)
    parser.add_argument("--top-n", type=int, default=10)
    args = parser.parse_args()

    settings = Settings.from_sources(
        home=args.home.resolve(), environ={}, file_data={"local": {"context_size": 4096}}
    )
    model = LocalModel(
        f"local:{args.model}", args.model, resolve_endpoint("local", settings), settings
    )
    judge = ModelRelevanceJudge(model, max_passage_chars=1200)
    base = KnowledgeBase.open_local(args.db)
    documents = {d.source: d for d in base.documents()}
    questions = load_questions(args.questions)[: args.questions_limit]
    plain_scores, reranked_scores, seconds = [], [], []
    for q in questions:
        wanted = {str((args.corpus / r).absolute()) for r in q["relevant"]}  # type: ignore[attr-defined]
        total = sum(documents[w].chunk_count for w in wanted)
        options = SearchOptions(k=10)
        plain = await base.search(str(q["question"]), options)
        started = time.monotonic()
        reranked = await base.search(
            str(q["question"]),
            options,
            judge=judge,
            rerank_settings=RerankSettings(top_n=args.top_n, concurrency=1),
        )
        seconds.append(time.monotonic() - started)
        plain_scores.append(ndcg([r.source in wanted for r in plain], total))
        reranked_scores.append(ndcg([r.source in wanted for r in reranked], total))
        print(
            json.dumps({"id": q["id"], "plain": plain_scores[-1], "reranked": reranked_scores[-1]})
        )
    await model.aclose()
    base.close()
    print(
        json.dumps(
            {
                "model": args.model,
                "questions": len(questions),
                "top_n": args.top_n,
                "ndcg@10_hybrid": round(statistics.mean(plain_scores), 4),
                "ndcg@10_hybrid_reranked": round(statistics.mean(reranked_scores), 4),
                "seconds_per_query_reranked": round(statistics.median(seconds), 1),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
