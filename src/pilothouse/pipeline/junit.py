"""JUnit XML for CI: one test suite per arm and eval suite, one test case per eval case
(and repeat) with its failed checks as the failure message, errored cases as errors,
and a suite of the gates."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from pilothouse.pipeline.gates import GateResult
from pilothouse.pipeline.metrics import PASS, metric_named
from pilothouse.pipeline.summary import RunSummary
from pilothouse.storage.evals import EvalStore


def junit_xml(store: EvalStore, summary: RunSummary, gates: Sequence[GateResult] = ()) -> str:
    run = summary.run
    root = ET.Element("testsuites", name=f"pilothouse eval {run.run_id}")
    for arm in summary.arms:
        suites: dict[str, ET.Element] = {}
        failures: dict[tuple[str, str, int], list[str]] = {}
        for suite, case_id, rep, metric, _judge, value, detail in store.scores(
            run.run_id, arm.arm.number
        ):
            plugin = metric_named(metric)
            if metric != PASS and plugin is not None and plugin.kind == "check" and value == 0.0:
                failures.setdefault((suite, case_id, rep), []).append(
                    f"{metric}: {detail}" if detail else metric
                )
        for row in store.cases(run.run_id, arm.arm.number):
            element = suites.get(row.suite)
            if element is None:
                element = ET.SubElement(root, "testsuite", name=f"{row.suite} [{arm.arm.label}]")
                suites[row.suite] = element
            name = row.case_id if row.rep == 1 else f"{row.case_id} #{row.rep}"
            case = ET.SubElement(
                element,
                "testcase",
                classname=f"{run.copilot}.{row.suite}",
                name=name,
                time=f"{row.details.get('latency_s', 0.0):.3f}",
            )
            if row.status == "error":
                ET.SubElement(case, "error", message=row.error or "error").text = row.error
            elif row.status == "failed":
                reasons = failures.get((row.suite, row.case_id, row.rep), ["failed"])
                failure = ET.SubElement(case, "failure", message="; ".join(reasons))
                failure.text = (
                    f"question: {row.question}\nanswer: {row.answer}\ntrace: {row.trace_id}"
                )
            _system_out(case, row.trace_id)
        for element in suites.values():
            _count(element)
    if gates:
        element = ET.SubElement(root, "testsuite", name="gates")
        for gate in gates:
            case = ET.SubElement(
                element,
                "testcase",
                classname=f"{run.copilot}.gates",
                name=f"{gate.name} [{gate.arm}]",
            )
            if not gate.passed:
                ET.SubElement(case, "failure", message=gate.detail).text = gate.detail
        _count(element)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _system_out(case: ET.Element, trace_id: str | None) -> None:
    if trace_id:
        ET.SubElement(case, "system-out").text = f"pilothouse trace {trace_id}"


def _count(element: ET.Element) -> None:
    cases = element.findall("testcase")
    element.set("tests", str(len(cases)))
    element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    element.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    element.set("skipped", "0")


def write_junit(
    path: Path, store: EvalStore, summary: RunSummary, gates: Sequence[GateResult] = ()
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(store, summary, gates), encoding="utf-8")
