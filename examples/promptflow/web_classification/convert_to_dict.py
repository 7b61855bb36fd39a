import json

from promptflow import tool


@tool
def convert_to_dict(input_str: str) -> dict:
    try:
        start, end = input_str.index("{"), input_str.rindex("}") + 1
        return json.loads(input_str[start:end])
    except Exception as e:
        print("The input is not valid, error: {}".format(e))
        return {"category": "None", "evidence": "None"}
