"""Console registrations of monitoring (alerts and sampling: `alerts_admin`)."""

from monitoring import alerts_admin  # noqa: F401
