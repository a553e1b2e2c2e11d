"""Engines that run a model: torch itself, or OpenVINO on the CPU (see choice.py)."""
