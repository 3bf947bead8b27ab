"""The django-oscar test host: real django-oscar from PyPI with django_crosssell.contrib.oscar.

Run with ``pytest --ds=tests.oscar.settings tests/oscar`` (``make test`` does).
"""
