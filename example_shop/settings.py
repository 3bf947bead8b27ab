"""Settings of the example shop (the demo). Services come from the environment:
``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL``; unset, the shop runs on SQLite,
local-memory cache and eager Celery."""

import os
from pathlib import Path

from example_shop import env

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-shop-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_crosssell",
    "example_shop.shop",
]
try:  # Optional: schedules editable in the admin when django-celery-beat is installed.
    import django_celery_beat  # noqa: F401

    INSTALLED_APPS.append("django_celery_beat")
except ImportError:  # pragma: no cover
    pass

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # Measuring the effect (README): serves, clicks and orders, first-party and hashed.
    "django_crosssell.measure.middleware.TrackingMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_shop.urls"
WSGI_APPLICATION = "example_shop.wsgi.application"

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
                "example_shop.shop.context_processors.cart",
            ],
        },
    },
]

DATABASES = env.databases(BASE_DIR / "example_shop.sqlite3")
CACHES = env.caches()
globals().update(env.celery())
CELERY_TIMEZONE = "Asia/Tokyo"

AUTH_PASSWORD_VALIDATORS = []
LANGUAGE_CODE = "ja"
# Japanese labels for third-party apps without a Japanese catalogue (django-celery-beat).
LOCALE_PATHS = [BASE_DIR / "example_shop" / "locale"]
LANGUAGES = [("ja", "日本語"), ("en", "English")]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

# --- django-crosssell -------------------------------------------------------------------
CROSSSELL_PRODUCT_MODEL = "shop.Product"
CROSSSELL = {
    # Images, add-to-cart URLs and bundle pages (example_shop/shop/crosssell.py).
    "ADAPTER": "example_shop.shop.crosssell.ShopAdapter",
    "ORDER_LINE_MODEL": "shop.OrderLine",
    "ORDER_FILTER": {"order__status": "paid"},
    "AVAILABLE_PRODUCTS_FILTER": {"is_active": True, "stock__gt": 0},
    "CATEGORY_FIELD": "category",
    "PRICE_FORMATTER": "example_shop.shop.formatting.yen",
    "CURRENCY_DECIMALS": 0,
    # Measuring the effect (README): the demo counts every visitor who is not staff or a bot.
    "TRACKING": "always",
    # Follow-up and replenishment mail (README "After the purchase"). A real shop puts its
    # own name, postal address and contact here: every mail shows them (特定電子メール法).
    "FOLLOWUP_ENABLED": True,
    "FOLLOWUP_SENDER_NAME": "ミナト商店（デモ）",
    "FOLLOWUP_SENDER_ADDRESS": "〒105-0011 東京都港区芝公園0-0-0（架空の住所）",
    "FOLLOWUP_SENDER_CONTACT": "support@minato.example.jp",
    "FOLLOWUP_SENDER_PHONE": "03-0000-0000（架空の番号）",
    "FOLLOWUP_FROM_EMAIL": "ミナト商店 <shop@minato.example.jp>",
    "FOLLOWUP_SITE_URL": os.environ.get("SHOP_SITE_URL", "http://127.0.0.1:8000"),
}
# The demo serves plain http on localhost; a real shop's FOLLOWUP_SITE_URL is https.
SILENCED_SYSTEM_CHECKS = ["crosssell.W080"]

# Mails go to the console (the terminal running the shop), or to files in
# EMAIL_FILE_PATH when it is set. A real shop uses SMTP or django-anymail.
if os.environ.get("EMAIL_FILE_PATH"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = "ミナト商店 <shop@minato.example.jp>"

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Sessions only: DRF's default also enables HTTP Basic, where every request with a
    # made-up password costs a password hash before any throttle runs (README, "Load and
    # faults").
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "django-crosssell example shop API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from drf-spectacular-sidecar's static files, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_crosssell": {"handlers": ["console"], "level": "INFO"}},
}
