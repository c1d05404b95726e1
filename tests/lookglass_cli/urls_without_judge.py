from tests.lookglass_cli.judge_urls import without_judge as urlpatterns  # noqa: F401
