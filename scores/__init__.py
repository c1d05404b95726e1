"""Scores (data plane) and score configs (control plane): models, reads, the score-config cache and
conformance check every path that stores a score runs, and the score-config endpoints."""
