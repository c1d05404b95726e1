"""JUnit XML of a run: a CI system's test report shows the gate without reading logs.

One test case per threshold (a failed threshold is a `<failure>`), one per item (a target that
raised is an `<error>` with its traceback; each item's scores and reasons are in `<system-out>`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from lookglass.run import Report


def build(report: Report) -> ET.Element:
    failures = sum(1 for g in report.gates if not g.ok)
    errors = report.errored
    tests = len(report.gates) + len(report.outcomes)
    root = ET.Element(
        "testsuites", name="lookglass eval", tests=str(tests), failures=str(failures), errors=str(errors),
        time=f"{report.seconds:.3f}",
    )
    suite = ET.SubElement(
        root, "testsuite", name=f"lookglass eval: {report.dataset}", tests=str(tests), failures=str(failures),
        errors=str(errors), skipped="0", time=f"{report.seconds:.3f}",
        timestamp=report.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="dataset", value=report.dataset)
    ET.SubElement(properties, "property", name="run", value=report.run_name)
    ET.SubElement(properties, "property", name="baseline", value=report.baseline or "")
    for gate in report.gates:
        case = ET.SubElement(suite, "testcase", classname="lookglass.thresholds", name=f"{gate.name}: {gate.rule}", time="0")
        summary = (
            f"{gate.name}: {gate.passed}/{gate.scored} passed, mean "
            f"{'n/a' if gate.mean is None else f'{gate.mean:.3f}'} ({gate.rule}); {len(gate.regressions)} regression(s)"
        )
        if not gate.ok:
            failure = ET.SubElement(case, "failure", message=summary, type="ThresholdFailed")
            failure.text = "\n".join(
                [summary] + [f"regression {r.item_id}: baseline {r.baseline} → now {r.now}" for r in gate.regressions]
            )
        else:
            ET.SubElement(case, "system-out").text = summary
    for outcome in report.outcomes:
        case = ET.SubElement(
            suite, "testcase", classname=f"lookglass.items.{report.dataset}", name=outcome.item_id,
            time=f"{(outcome.latency_ms or 0) / 1000:.3f}",
        )
        if outcome.error is not None:
            error = ET.SubElement(case, "error", message=outcome.error[:1000], type=outcome.error.split(":", 1)[0])
            error.text = outcome.error_detail or outcome.error
            continue
        lines = [
            f"{name}: {'PASS' if r.passed else 'FAIL'} {r.value:g} — {r.reason}" for name, r in outcome.results.items()
        ]
        lines += [f"{name}: ERROR — {message}" for name, message in outcome.eval_errors.items()]
        ET.SubElement(case, "system-out").text = "\n".join(lines)
    return root


def write(report: Report, path: str | Path) -> None:
    tree = ET.ElementTree(build(report))
    ET.indent(tree)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tree.write(path, encoding="utf-8", xml_declaration=True)
