"""Rotor's benchmark: `python -m bench` (see the README, Performance)."""
