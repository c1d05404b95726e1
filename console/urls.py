from django.urls import path

from console import dashboard_views, export_views, judge_views, playground_views, prompt_views, views

app_name = "console"

urlpatterns = [
    path("", views.index, name="index"),
    path("p/<uuid:project_id>/", views.home, name="home"),
    path("p/<uuid:project_id>/traces/", views.traces, name="traces"),
    path("p/<uuid:project_id>/traces/export", views.traces_export, name="traces_export"),
    path("p/<uuid:project_id>/views/", views.saved_view_save, name="saved_view_save"),
    path("p/<uuid:project_id>/views/<int:view_id>/delete", views.saved_view_delete, name="saved_view_delete"),
    # Trace, session and user ids are any string a client chose: `<path:…>` takes them whole (the
    # links percent-encode them, `/` included); the action routes come first.
    path("p/<uuid:project_id>/traces/<path:trace_id>/score", views.trace_score, name="trace_score"),
    path("p/<uuid:project_id>/traces/<path:trace_id>/dataset", views.trace_to_dataset, name="trace_to_dataset"),
    path("p/<uuid:project_id>/traces/<path:trace_id>/", views.trace_detail, name="trace"),
    path("p/<uuid:project_id>/sessions/", views.sessions, name="sessions"),
    path("p/<uuid:project_id>/sessions/<path:session_id>/", views.session_detail, name="session"),
    path("p/<uuid:project_id>/users/", views.users, name="users"),
    path("p/<uuid:project_id>/users/<path:user_id>/", views.user_detail, name="user"),
    path("p/<uuid:project_id>/datasets/", views.datasets, name="datasets"),
    path("p/<uuid:project_id>/datasets/<uuid:dataset_id>/", judge_views.dataset_detail, name="dataset"),
    path("p/<uuid:project_id>/datasets/<uuid:dataset_id>/runs/<str:dataset_run_id>/", judge_views.run_detail,
         name="run"),
    path("p/<uuid:project_id>/datasets/<uuid:dataset_id>/compare/", judge_views.run_compare, name="run_compare"),
    path("p/<uuid:project_id>/evaluators/", judge_views.evaluators, name="evaluators"),
    path("p/<uuid:project_id>/evaluators/rules/<uuid:eval_rule_id>/", judge_views.eval_rule_detail, name="eval_rule"),
    path("p/<uuid:project_id>/evaluators/rules/<uuid:eval_rule_id>/enabled", judge_views.eval_rule_enabled,
         name="eval_rule_enabled"),
    path("p/<uuid:project_id>/review/", views.review, name="review"),
    path("p/<uuid:project_id>/dashboards/", dashboard_views.dashboards, name="dashboards"),
    path("p/<uuid:project_id>/playground/", playground_views.playground, name="playground"),
    path("p/<uuid:project_id>/playground/run", playground_views.playground_run, name="playground_run"),
    path("p/<uuid:project_id>/playground/save", playground_views.playground_save, name="playground_save"),
    path("p/<uuid:project_id>/feedback/", dashboard_views.feedback, name="feedback"),
    path("p/<uuid:project_id>/alerts/", dashboard_views.alerts, name="alerts"),
    path("p/<uuid:project_id>/alerts/<uuid:alert_rule_id>/", dashboard_views.alert_detail, name="alert"),
    path("p/<uuid:project_id>/usage/", dashboard_views.usage, name="usage"),
    path("p/<uuid:project_id>/exports/", export_views.exports, name="exports"),
    path("p/<uuid:project_id>/exports/new", export_views.export_create, name="export_create"),
    path("p/<uuid:project_id>/prompts/", prompt_views.prompts, name="prompts"),
    # No trailing slash: a prompt named "new" keeps its page at prompts/new/.
    path("p/<uuid:project_id>/prompts/new", prompt_views.prompt_create, name="prompt_create"),
    path("p/<uuid:project_id>/prompts/<path:name>/labels", prompt_views.prompt_label, name="prompt_label"),
    path("p/<uuid:project_id>/prompts/<path:name>/versions", prompt_views.prompt_version_create,
         name="prompt_version_create"),
    path("p/<uuid:project_id>/prompts/<path:name>/generations", prompt_views.prompt_generations,
         name="prompt_generations"),
    path("p/<uuid:project_id>/prompts/<path:name>/", prompt_views.prompt_detail, name="prompt"),
]
