from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrossSellOscarConfig(AppConfig):
    """``django_crosssell.contrib.oscar``: listed after ``django_crosssell``."""

    name = "django_crosssell.contrib.oscar"
    label = "crosssell_oscar"
    verbose_name = _("Cross-sell for django-oscar")

    def ready(self) -> None:
        from . import checks, measure, signals

        signals.connect()
        measure.connect()  # orders placed through Oscar are attributed (measurement)
        checks.register()
