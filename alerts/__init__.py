"""Alerting: rules (what holds now), state (what was already said), slack (render and post)."""
