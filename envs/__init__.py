"""Environments FxAI trains on. ``envs.fx`` is the FX market and its trading envs; importing
``envs`` registers ``FxAI/FxTrading-v0`` with gymnasium (any other gymnasium id works as it is)."""

from envs import fx

__all__ = ["fx"]
