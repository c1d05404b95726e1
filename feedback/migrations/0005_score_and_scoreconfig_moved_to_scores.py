"""Score and ScoreConfig moved to scores/ (issue 9); their tables, `feedback_score` and
`feedback_scoreconfig`, stay."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('feedback', '0004_feedback_event_append_only'),
        ('scores', '0001_initial'),
    ]

    operations = [
        # State only: the table stays, now owned by scores/.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Score'),
                migrations.DeleteModel(name='ScoreConfig'),
            ],
        ),
    ]
