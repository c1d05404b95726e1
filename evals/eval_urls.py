"""Routes of the evaluation API (see `evals.eval_views`)."""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from evals import eval_views as v

router = SimpleRouter(trailing_slash=False)
router.register(
    r"api/v1/organizations/(?P<organization_id>[^/]+)/projects/(?P<project_id>[^/]+)/evals", v.EvalsViewSet, basename="evals"
)

ID = r"(?P<{}>[^/]+)"
urlpatterns = [
    path("api/public/llm-connections", v.llm_connections, name="public-llm-connections"),
    path("api/public/lookglass/judge", v.judge, name="public-lookglass-judge"),
    path("api/public/lookglass/evaluator-templates", v.evaluator_templates, name="public-evaluator-templates"),
    path("", include(router.urls)),
]
for generation in ("v2", "unstable"):
    urlpatterns += [
        re_path(rf"^api/public/{generation}/evaluators$", v.evaluators_root, name=f"public-{generation}-evaluators"),
        re_path(rf"^api/public/{generation}/evaluators/{ID.format('evaluator_id')}/versions$", v.evaluator_versions,
                name=f"public-{generation}-evaluator-versions"),
        re_path(rf"^api/public/{generation}/evaluators/{ID.format('evaluator_id')}$", v.evaluator_detail,
                name=f"public-{generation}-evaluator"),
        re_path(rf"^api/public/{generation}/evaluation-rules$", v.rules_root, name=f"public-{generation}-evaluation-rules"),
        re_path(rf"^api/public/{generation}/evaluation-rules/{ID.format('rule_id')}$", v.rule_detail,
                name=f"public-{generation}-evaluation-rule"),
    ]
