from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "example_shop.shop"
    label = "shop"
    verbose_name = "ショップ"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Create the shop's Celery app whenever Django starts (the usual project-package
        # import, done here so tests that only borrow example_shop.env don't load it), so
        # django-crosssell's @shared_task binds to it and .delay() reaches the broker.
        from example_shop.celery import app  # noqa: F401
