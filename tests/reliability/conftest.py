"""Fixtures of the reliability suite; the helpers themselves live in ``support.py``."""

from .support import paused_children, shared_dir

__all__ = ["paused_children", "shared_dir"]
