"""Settings of the django-oscar test host, built the way Oscar's "Building your own shop" says.

The crosssell part is exactly what the README's "django-oscar" section tells a shop to add:
the two apps and the adapter line. Everything else is Oscar's own setup.

Without django-oscar installed this module falls back to the library's test settings so
that pytest can start; ``tests/oscar/conftest.py`` then skips the suite with the reason (or
fails it with ``CROSSSELL_REQUIRE_SERVICES=1``, as on CI).
"""

from importlib.util import find_spec

OSCAR_INSTALLED = find_spec("oscar") is not None

if not OSCAR_INSTALLED:
    from tests.settings import *  # noqa: F403
else:
    from pathlib import Path

    from oscar.defaults import *  # noqa: F403

    from tests import env

    BASE_DIR = Path(__file__).resolve().parent

    SECRET_KEY = "django-crosssell-oscar-tests"
    DEBUG = False
    ALLOWED_HOSTS = ["*"]
    USE_TZ = True
    TIME_ZONE = "Europe/London"
    LANGUAGE_CODE = "en-gb"
    USE_I18N = True
    SITE_ID = 1

    INSTALLED_APPS = [
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
        "django.contrib.sites",
        "django.contrib.flatpages",
        "oscar.config.Shop",
        "oscar.apps.analytics.apps.AnalyticsConfig",
        "oscar.apps.checkout.apps.CheckoutConfig",
        "oscar.apps.address.apps.AddressConfig",
        "oscar.apps.shipping.apps.ShippingConfig",
        "oscar.apps.catalogue.apps.CatalogueConfig",
        "oscar.apps.catalogue.reviews.apps.CatalogueReviewsConfig",
        "oscar.apps.communication.apps.CommunicationConfig",
        "oscar.apps.partner.apps.PartnerConfig",
        "oscar.apps.basket.apps.BasketConfig",
        "oscar.apps.payment.apps.PaymentConfig",
        "oscar.apps.offer.apps.OfferConfig",
        "oscar.apps.order.apps.OrderConfig",
        "oscar.apps.customer.apps.CustomerConfig",
        "oscar.apps.search.apps.SearchConfig",
        "oscar.apps.voucher.apps.VoucherConfig",
        "oscar.apps.wishlists.apps.WishlistsConfig",
        "oscar.apps.dashboard.apps.DashboardConfig",
        "oscar.apps.dashboard.reports.apps.ReportsDashboardConfig",
        "oscar.apps.dashboard.users.apps.UsersDashboardConfig",
        "oscar.apps.dashboard.orders.apps.OrdersDashboardConfig",
        "oscar.apps.dashboard.catalogue.apps.CatalogueDashboardConfig",
        "oscar.apps.dashboard.offers.apps.OffersDashboardConfig",
        "oscar.apps.dashboard.partners.apps.PartnersDashboardConfig",
        "oscar.apps.dashboard.pages.apps.PagesDashboardConfig",
        "oscar.apps.dashboard.ranges.apps.RangesDashboardConfig",
        "oscar.apps.dashboard.reviews.apps.ReviewsDashboardConfig",
        "oscar.apps.dashboard.vouchers.apps.VouchersDashboardConfig",
        "oscar.apps.dashboard.communications.apps.CommunicationsDashboardConfig",
        "oscar.apps.dashboard.shipping.apps.ShippingDashboardConfig",
        "widget_tweaks",
        "haystack",
        "treebeard",
        "django_tables2",
        # django-crosssell, as the README's "django-oscar" section says:
        "rest_framework",
        "django_crosssell",
        "django_crosssell.contrib.oscar",
    ]

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "oscar.apps.basket.middleware.BasketMiddleware",
        "django_crosssell.measure.middleware.TrackingMiddleware",
        "django.contrib.flatpages.middleware.FlatpageFallbackMiddleware",
    ]

    ROOT_URLCONF = "tests.oscar.urls"

    TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            # The README's template overrides for Oscar's product and basket pages.
            "DIRS": [BASE_DIR / "templates"],
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.debug",
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                    "oscar.apps.search.context_processors.search_form",
                    "oscar.apps.checkout.context_processors.checkout",
                    "oscar.apps.communication.notifications.context_processors.notifications",
                    "oscar.core.context_processors.metadata",
                ],
            },
        },
    ]

    AUTHENTICATION_BACKENDS = (
        "oscar.apps.customer.auth_backends.EmailBackend",
        "django.contrib.auth.backends.ModelBackend",
    )
    HAYSTACK_CONNECTIONS = {"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}}

    DATABASES = env.databases(":memory:")
    CACHES = env.caches()
    globals().update(env.celery())

    DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
    STATIC_URL = "/static/"
    MEDIA_URL = "/media/"
    MEDIA_ROOT = BASE_DIR / "media"
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    # No sorl-thumbnail or easy-thumbnails in the test environment: cards and Oscar's own
    # templates get the original image (tests/oscar/thumbnails.py).
    OSCAR_THUMBNAILER = "tests.oscar.thumbnails.OriginalImage"
    OSCAR_DEFAULT_CURRENCY = "GBP"
    OSCAR_INITIAL_ORDER_STATUS = "Pending"
    OSCAR_INITIAL_LINE_STATUS = "Pending"
    OSCAR_ORDER_STATUS_PIPELINE = {
        "Pending": ("Being processed", "Cancelled"),
        "Being processed": ("Complete", "Cancelled"),
        "Cancelled": (),
        "Complete": (),
    }
    OSCAR_EAGER_ALERTS = False

    # django-crosssell: the one line a shop adds.
    CROSSSELL_PRODUCT_MODEL = "catalogue.Product"
    CROSSSELL = {"ADAPTER": "django_crosssell.contrib.oscar.adapter.OscarAdapter"}

    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"console": {"class": "logging.StreamHandler"}},
        "loggers": {"django_crosssell": {"handlers": ["console"], "level": "WARNING"}},
    }
