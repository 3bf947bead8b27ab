from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Like a real host (and the example shop), create the Celery app when Django starts,
        # so `manage.py check --settings=tests.settings` sees it (crosssell.W002).
        from tests.celery_app import app  # noqa: F401
