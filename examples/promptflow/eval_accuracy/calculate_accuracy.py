from typing import List

from promptflow import log_metric, tool


@tool
def calculate_accuracy(grades: List[str]):
    result = []
    for index in range(len(grades)):
        grade = grades[index]
        result.append(grade)
    accuracy = round((result.count("Correct") / len(result)), 2)
    log_metric("accuracy", accuracy)
    return result
