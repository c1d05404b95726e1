"""Langfuse-compatible public read API (traces, observations, sessions)."""
