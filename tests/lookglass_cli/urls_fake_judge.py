from tests.lookglass_cli.judge_urls import fake_judge as urlpatterns  # noqa: F401
