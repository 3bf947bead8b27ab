"""``manage.py crosssell_import_oscar_recommendations``: Oscar's recommendations as links.

Oscar's staff may already have curated ``ProductRecommendation`` rows (the "Recommended
items" of Oscar's product page). This copies them into django-crosssell's curated links,
which rank above computed partners: same source and target (variants as their parent),
ordered by Oscar's ranking (higher first). Idempotent: a second run creates nothing and
only moves links whose ranking changed. Links staff added in the Django admin are left
alone; links whose Oscar row was deleted are not removed.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from oscar.core.loading import get_model

from django_crosssell.adapter import get_adapter
from django_crosssell.models import ProductRelation

NOTE = "Imported from Oscar's product recommendations"


class Command(BaseCommand):
    help = "Import Oscar's ProductRecommendation rows as django-crosssell curated links."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--kind",
            choices=[kind.value for kind in ProductRelation.Kind],
            default=ProductRelation.Kind.RELATED.value,
            help="Kind of the imported links (default: related, 'you may also like').",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, write nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        kind, dry_run = options["kind"], options["dry_run"]
        rows = (
            get_model("catalogue", "ProductRecommendation")
            .objects.select_related("primary", "recommendation")
            .order_by("primary_id", "-ranking", "pk")
        )
        wanted: dict[tuple[Any, Any], int] = {}  # (source, target) -> position
        per_source: dict[Any, int] = {}
        adapter = get_adapter()
        for row in rows:
            ids = adapter.canonical_ids([row.primary, row.recommendation])
            source, target = ids[row.primary.pk], ids[row.recommendation.pk]
            if source == target or (source, target) in wanted:
                continue
            per_source[source] = per_source.get(source, 0) + 1
            wanted[(source, target)] = per_source[source]
        created = moved = 0
        with transaction.atomic():
            existing = {
                (link.source_id, link.target_id): link
                for link in ProductRelation.objects.filter(
                    kind=kind, source__in={source for source, _ in wanted}
                )
            }
            for (source, target), position in wanted.items():
                link = existing.get((source, target))
                if link is None:
                    created += 1
                    if not dry_run:
                        ProductRelation.objects.create(
                            source_id=source,
                            target_id=target,
                            kind=kind,
                            position=position,
                            note=NOTE,
                        )
                elif link.note == NOTE and link.position != position:
                    moved += 1
                    if not dry_run:
                        link.position = position
                        link.save(update_fields=["position"])
        unchanged = len(wanted) - created - moved
        self.stdout.write(
            f"{'Dry run, nothing written: ' if dry_run else ''}{created} created, {moved} "
            f"moved, {unchanged} unchanged ({len(wanted)} Oscar recommendations, kind {kind})."
        )
