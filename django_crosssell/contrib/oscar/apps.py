from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrossSellOscarConfig(AppConfig):
    """``django_crosssell.contrib.oscar``: listed after ``django_crosssell``."""

    name = "django_crosssell.contrib.oscar"
    label = "crosssell_oscar"
    verbose_name = _("Cross-sell for django-oscar")

    def ready(self) -> None:
        from . import checks, signals

        signals.connect()
        checks.register()
