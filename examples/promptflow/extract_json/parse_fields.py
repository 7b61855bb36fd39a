import json

from promptflow.core import tool


@tool
def parse_fields(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {"valid": False}
    return {
        "valid": isinstance(value, dict),
        "keys": sorted(value) if isinstance(value, dict) else [],
    }
