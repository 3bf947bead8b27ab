"""Settings for the library's own test suite (host = tests.testapp, UUID product keys)."""

from pathlib import Path

from tests import env

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "django-crosssell-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "Asia/Tokyo"
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("ja", "日本語")]
USE_I18N = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    "django_crosssell",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_crosssell.measure.middleware.TrackingMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = env.databases(":memory:")
CACHES = env.caches()
globals().update(env.celery())

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

CROSSSELL_PRODUCT_MODEL = "testapp.Product"
CROSSSELL = {
    "ORDER_LINE_MODEL": "testapp.OrderLine",
    "ORDER_FILTER": {"order__status": "paid"},
    "AVAILABLE_PRODUCTS_FILTER": {"is_active": True, "stock__gt": 0},
    "CATEGORY_FIELD": "category",
    # The fixtures place orders without running a recompute, so most tests read bestsellers
    # from the order lines; tests/test_engine_sales.py covers the default ("run").
    "BESTSELLERS_SOURCE": "order_lines",
}

REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {"SERVE_INCLUDE_SCHEMA": False, "COMPONENT_SPLIT_REQUEST": True}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_crosssell": {"handlers": ["console"], "level": "WARNING"}},
}
