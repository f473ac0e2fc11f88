"""Fixtures of the store suite: the emulators are session-wide and live in ``lakes.py``."""

from .lakes import azure_oauth_server, azure_server, s3_server

__all__ = ["azure_oauth_server", "azure_server", "s3_server"]
