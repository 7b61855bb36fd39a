from promptflow import tool

STATUS = {"vpn": "degraded", "mail": "up", "printing": "up"}


@tool
def check_service_status(question: str) -> str:
    """Say which services a question mentions and their current status."""
    found = [f"{name}: {state}" for name, state in STATUS.items() if name in question.lower()]
    return "; ".join(found) or "no known service mentioned"
