"""``manage.py crosssell_oscar_install_offer``: (re)install the bundle discount site offer.

The app's migration installs it; this command repairs a deleted offer, or a condition or
benefit whose custom class was changed in Oscar's dashboard. Idempotent.
"""

from typing import Any

from django.core.management.base import BaseCommand
from oscar.core.loading import get_model

from django_crosssell.contrib.oscar.offers import install_offer


class Command(BaseCommand):
    help = "Install (or repair) the Oscar site offer that charges django-crosssell's bundles."

    def handle(self, *args: Any, **options: Any) -> None:
        offer, created = install_offer(
            get_model("offer", "ConditionalOffer"),
            get_model("offer", "Condition"),
            get_model("offer", "Benefit"),
        )
        verb = "Installed" if created else "Already installed:"
        self.stdout.write(f"{verb} the site offer {offer.name!r} (slug {offer.slug!r}).")
