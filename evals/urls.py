"""Dataset routes, mounted at the site root: the Langfuse datasets API under /api/public/ (no
trailing slashes, as the SDKs call them) and the management "add to dataset" under /api/v1/.

Dataset names and item ids may contain `/`. The SDKs send them percent-encoded, which the WSGI
server decodes before routing, so names match `.+`; the runs routes are split in the view (see
`evals.views._split_runs_path`)."""

from django.urls import path, re_path

from evals import experiment_views, review_api, views

PROJECT = "api/v1/organizations/<str:organization_id>/projects/<str:project_id>/"

urlpatterns = [
    re_path(r"^api/public/v2/datasets$", views.datasets_root, name="public-datasets"),
    re_path(r"^api/public/v2/datasets/(?P<name>.+)$", views.dataset_detail, name="public-dataset"),
    re_path(r"^api/public/dataset-items$", views.dataset_items_root, name="public-dataset-items"),
    re_path(r"^api/public/dataset-items/(?P<item_id>.+)$", views.dataset_item_detail, name="public-dataset-item"),
    re_path(r"^api/public/dataset-run-items$", views.dataset_run_items, name="public-dataset-run-items"),
    re_path(r"^api/public/datasets/(?P<rest>.+)$", views.datasets_v1, name="public-dataset-runs"),
    path("api/public/experiments", experiment_views.experiments, name="public-experiments"),
    path("api/public/experiment-items", experiment_views.experiment_items, name="public-experiment-items"),
    path(
        PROJECT + "dataset-items/from-trace",
        views.DatasetItemFromTraceViewSet.as_view({"post": "create"}),
        name="dataset-item-from-trace",
    ),
    path(
        PROJECT + "review-rules/",
        review_api.ReviewRuleViewSet.as_view({"get": "list", "post": "create"}),
        name="review-rule-list",
    ),
    path(
        PROJECT + "review-rules/<str:rule_id>/",
        review_api.ReviewRuleViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
        name="review-rule-detail",
    ),
]

# Evaluations (evaluators, rules, connections, jobs, results): their own module.
from evals.eval_urls import urlpatterns as evaluation_urlpatterns  # noqa: E402

urlpatterns += evaluation_urlpatterns
