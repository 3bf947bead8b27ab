"""``manage.py demo_admin``: the demo's superuser ``admin`` / ``admin``.

Idempotent so ``make demo`` can run it every time; it also resets the password, so a demo
whose admin password was changed can be brought back to the documented one.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

USERNAME = "admin"
PASSWORD = "admin"


class Command(BaseCommand):
    help = "Create or update the demo superuser admin/admin (never use this in production)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000/admin/",
            help="admin URL to print (the host and port you serve the demo on)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(
            **{user_model.USERNAME_FIELD: USERNAME}, defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(PASSWORD)
        user.save()
        action = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{action} the demo superuser."))
        self.stdout.write(
            f"  username: {USERNAME}\n  password: {PASSWORD}\n  admin: {options['url']}"
        )
