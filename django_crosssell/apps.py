from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CrossSellConfig(AppConfig):
    name = "django_crosssell"
    verbose_name = _("Cross-sell")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import (
            checks,  # noqa: F401  (registers the system checks)
            engine_checks,  # noqa: F401  (E060-E069)
            load_checks,  # noqa: F401  (E070, W070)
        )
        from .customers import checks as customers_checks  # noqa: F401  (E040..., W040...)
        from .followup import checks as followup_checks  # noqa: F401  (E080..., W080...)
        from .followup.signals import connect as connect_provider_events
        from .measure import checks as measure_checks  # noqa: F401  (E030..., W030...)
        from .measure.receivers import connect as connect_measurement
        from .signals import connect as connect_cache_invalidation

        connect_cache_invalidation()
        connect_provider_events()  # django-anymail's tracking signal, when installed
        connect_measurement()
