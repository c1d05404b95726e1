"""Judge: datasets with their items and runs, a run's summary, two runs side by side with the
regressions, evaluators and evaluation rules with their job states.

Reads through `evals.selectors` / `evals.eval_selectors` (the run summary and comparison are the ones
the evals API answers with); the one write, switching a rule on or off, goes through
`evals.eval_services.rule_save` as the API's PATCH does — a POST with CSRF, members and above.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from console.access import console_login_required, may_annotate, project_or_404
from console.views import PAGE_SIZE, _page, _page_number, trace_url
from evals import eval_selectors, eval_services, judging
from evals import selectors as eval_reads
from evals.evaluation_models import EvalJobStatus

JOB_STATES = [s.value for s in EvalJobStatus]


def _dataset_or_404(project, dataset_id):
    dataset = eval_reads.dataset_by_id(project=project, dataset_id=dataset_id)
    if dataset is None:
        raise Http404("No such dataset.")
    return dataset


def _run_or_404(project, dataset, run_id):
    run = eval_reads.run_by_id(project=project, dataset=dataset, run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    return run


@require_GET
@console_login_required
def dataset_detail(request, project_id, dataset_id):
    project = project_or_404(request, project_id)
    dataset = _dataset_or_404(project, dataset_id)
    page = _page_number(request)
    items, total = eval_reads.dataset_item_page(project=project, dataset=dataset, source_trace_id=None,
                                                source_observation_id=None, page=page, limit=PAGE_SIZE)
    runs = eval_reads.runs_of(project=project, dataset=dataset)
    context = {
        "dataset": dataset, "items": [(item, trace_url(project, item.source_trace_id) if item.source_trace_id else None)
                                      for item in items],
        "total": total, "page": page, "more": page * PAGE_SIZE < total, "runs": runs,
    }
    return _page(request, project, "console/dataset.html", {**context, "tab": "datasets"}, section="datasets")


@require_GET
@console_login_required
def run_detail(request, project_id, dataset_id, dataset_run_id):
    project = project_or_404(request, project_id)
    dataset = _dataset_or_404(project, dataset_id)
    run = _run_or_404(project, dataset, dataset_run_id)
    page = _page_number(request)
    items, total = eval_reads.run_item_page(project=project, run=run, page=page, limit=PAGE_SIZE)
    context = {
        "dataset": dataset, "run": run, "summary": eval_selectors.run_summary(project=project, run=run),
        "items": [(item, trace_url(project, item.trace_id)) for item in items],
        "total": total, "page": page, "more": page * PAGE_SIZE < total,
        "others": [r for r in eval_reads.runs_of(project=project, dataset=dataset) if r.id != run.id],
    }
    return _page(request, project, "console/run.html", {**context, "tab": "datasets"}, section="datasets")


@require_GET
@console_login_required
def run_compare(request, project_id, dataset_id):
    """Two runs of a dataset side by side: per-evaluator averages, per-item values, regressions
    (items that passed an evaluator in the baseline and fail it in the candidate)."""
    project = project_or_404(request, project_id)
    dataset = _dataset_or_404(project, dataset_id)
    runs = eval_reads.runs_of(project=project, dataset=dataset)
    baseline_id, candidate_id = request.GET.get("baseline"), request.GET.get("candidate")
    if not baseline_id and not candidate_id and len(runs) >= 2:
        baseline_id, candidate_id = str(runs[1].id), str(runs[0].id)  # the previous run against the latest
    baseline = _run_or_404(project, dataset, baseline_id)
    candidate = _run_or_404(project, dataset, candidate_id)
    compare = eval_selectors.run_compare(project=project, baseline=baseline, candidate=candidate)
    regressed = {(r["datasetItemId"], r["name"]) for r in compare["regressions"]}
    names = [e["name"] for e in compare["evaluators"]]
    rows = []
    for item in compare["items"]:
        cells = []
        for name in names:
            value = item["scores"][name]
            cells.append({**value, "regressed": (item["datasetItemId"], name) in regressed})
        rows.append({"item": item["datasetItemId"], "cells": cells, "regressed": any(c["regressed"] for c in cells)})
    context = {"dataset": dataset, "runs": runs, "baseline": baseline, "candidate": candidate, "compare": compare,
               "names": names, "rows": rows}
    return _page(request, project, "console/run_compare.html", {**context, "tab": "datasets"}, section="datasets")


@require_GET
@console_login_required
def evaluators(request, project_id):
    project = project_or_404(request, project_id)
    evaluator_rows = eval_selectors.evaluator_list(project=project)
    names = {str(e.id): e.name for e in evaluator_rows}
    counts = eval_selectors.job_counts_by_rule(project=project)
    empty = dict.fromkeys(JOB_STATES, 0)
    rules = [{"rule": r, "counts": counts.get(str(r.id), empty),
              "evaluators": [names.get(a.get("evaluatorId"), "?") for a in r.assignments]}
             for r in eval_selectors.rule_list(project=project)]
    context = {"evaluators": evaluator_rows, "rules": rules, "states": JOB_STATES,
               "can_write": may_annotate(request, project), "tab": "evaluators"}
    return _page(request, project, "console/evaluators.html", context, section="datasets")


@require_GET
@console_login_required
def eval_rule_detail(request, project_id, eval_rule_id):
    project = project_or_404(request, project_id)
    rule = eval_selectors.rule_get(project=project, rule_id=str(eval_rule_id))
    if rule is None:
        raise Http404("No such evaluation rule.")
    status = request.GET.get("status") or None
    if status is not None and status not in JOB_STATES:
        raise Http404("Unknown job state.")
    jobs = list(eval_selectors.jobs_query(project=project, rule_id=rule.id, status=status)[:PAGE_SIZE * 2])
    context = {"rule": rule, "counts": eval_selectors.job_counts(project=project, rule_id=rule.id),
               "jobs": [(j, trace_url(project, j.trace_id) if j.trace_id else None) for j in jobs],
               "status": status, "states": JOB_STATES, "can_write": may_annotate(request, project),
               "tab": "evaluators"}
    return _page(request, project, "console/eval_rule.html", context, section="datasets")


@require_POST
@console_login_required
def eval_rule_enabled(request, project_id, eval_rule_id):
    project = project_or_404(request, project_id)
    rule = eval_selectors.rule_get(project=project, rule_id=str(eval_rule_id))
    if rule is None:
        raise Http404("No such evaluation rule.")
    if not may_annotate(request, project):
        raise PermissionDenied("Viewers cannot change evaluation rules.")
    enabled = request.POST.get("enabled") == "1"
    try:
        eval_services.rule_save(project=project, data={"enabled": enabled}, rule=rule, actor=request.user)
    except judging.DefinitionError as exc:
        messages.error(request, f"{rule.name}: {exc}")
    else:
        messages.success(request, f"{rule.name} is {'on' if enabled else 'off'}.")
    # Back to the page the form was on: the rule's page or the list (never a URL from the form).
    name = "eval_rule" if request.POST.get("back") == "rule" else "evaluators"
    args = [project.id, rule.id] if name == "eval_rule" else [project.id]
    return HttpResponseRedirect(reverse(f"console:{name}", args=args))
