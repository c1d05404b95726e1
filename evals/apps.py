from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Review rules follow every stored score (ingest.pipeline.on_stored; evals/review.py), and
        # experiments sent as spans become dataset runs (evals/experiments.py).
        from evals import experiments, review
        from ingest.pipeline import on_stored

        on_stored(review.after_scores_stored)
        on_stored(experiments.after_experiment_spans_stored)
