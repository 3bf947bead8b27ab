"""Integrations with shop frameworks, each an optional Django app (``contrib.oscar``)."""
