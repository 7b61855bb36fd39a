from typing import List

from promptflow import tool
from promptflow_vectordb.core.contracts import SearchResultEntity


@tool
def generate_prompt_context(search_result: List[dict]) -> str:
    def format_doc(doc: dict):
        return f"Content: {doc['Content']}\nSource: {doc['Source']}"

    retrieved_docs = []
    for item in search_result:
        entity = SearchResultEntity.from_dict(item)
        content = entity.text or ""
        source = entity.metadata.get("source", "") if entity.metadata else ""
        retrieved_docs.append({"Content": content, "Source": source})
    return "\n\n".join(format_doc(doc) for doc in retrieved_docs)
