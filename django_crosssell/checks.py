"""System checks: a misconfigured host sees ``crosssell.E0xx`` at ``manage.py check``."""
