"""Settings for django-crosssell.

Two settings are read from the host project:

* ``CROSSSELL_PRODUCT_MODEL`` (top level, like ``AUTH_USER_MODEL``) because migrations and
  foreign keys need it before any app code runs.
* ``CROSSSELL``, one dict holding every behaviour setting. Missing keys fall back to what
  the ``ADAPTER`` class implies (``CrossSellAdapter.default_settings()``), then to
  :data:`DEFAULTS`; ``ORDER_LINE_FIELDS`` is merged key by key so a host only names the
  paths that differ from the defaults.

Values are read lazily and cached on the :data:`app_settings` object; the cache is dropped
on Django's ``setting_changed`` signal so ``override_settings`` works in tests.
"""

from __future__ import annotations

from typing import Any, cast

from django.apps import apps
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.core.signals import setting_changed
from django.db import models
from django.dispatch import receiver
from django.utils.module_loading import import_string

PRODUCT_MODEL_SETTING = "CROSSSELL_PRODUCT_MODEL"

#: Logical names of the order-line columns the affinity engine and the
#: "exclude what the customer already bought" filter read, mapped to ORM paths
#: relative to ``ORDER_LINE_MODEL``.
DEFAULT_ORDER_LINE_FIELDS: dict[str, str | None] = {
    "order": "order_id",
    "product": "product_id",
    "quantity": "quantity",
    "placed_at": "order__placed_at",
    "customer": "order__customer_id",
    "unit_price": "unit_price",
}

#: Every key the ``CROSSSELL`` dict understands, with its default.
DEFAULTS: dict[str, Any] = {
    # --- Reading the host's orders -------------------------------------------------------
    # "app_label.ModelName" of the host's order line; None disables computed affinity.
    "ORDER_LINE_MODEL": None,
    # ORM paths from the order line to each logical column (merged with the defaults).
    # "customer" and "unit_price" may be None when the host has no such column.
    "ORDER_LINE_FIELDS": DEFAULT_ORDER_LINE_FIELDS,
    # Lookups an order line must match to count, e.g. {"order__status": "paid"}.
    "ORDER_FILTER": {},
    # Dotted path to a callable replacing the whole order-line source (see sources.py).
    "ORDER_SOURCE": None,
    # Rows fetched per round trip when streaming order lines.
    "CHUNK_SIZE": 20_000,
    # PostgreSQL's work_mem for the recompute's binary COPY of the order lines (that one
    # statement; None: the server's own). With the default 4MB a 200k-order shop's join spills
    # to disk in batches, which made the read and the engine after it 0.1-0.3 s slower.
    "READ_WORK_MEM": "64MB",
    # --- The host's catalogue ------------------------------------------------------------
    # Dotted path to the host adapter class (a django_crosssell.adapter.CrossSellAdapter
    # subclass): the one place the app asks the host about prices, availability, variants,
    # images, carts and orders. None uses the default adapter, which reads the settings below.
    "ADAPTER": None,
    # Lookups a product must match to be recommended, e.g. {"is_active": True, "stock__gt": 0}.
    "AVAILABLE_PRODUCTS_FILTER": {},
    "PRICE_FIELD": "price",
    # Optional: field of the product used for same-category fallbacks.
    "CATEGORY_FIELD": None,
    # Optional: image field shown on product cards.
    "IMAGE_FIELD": None,
    # Dotted path to ``callable(amount) -> str`` used by widgets to show prices.
    "PRICE_FORMATTER": "django_crosssell.formatting.format_price",
    # --- Widgets and the recommendation service -----------------------------------------
    "DEFAULT_LIMIT": 4,
    "MAX_LIMIT": 20,
    # Fill empty slots with bestsellers ("bestsellers") or not at all (None).
    "FALLBACK": "bestsellers",
    # Hide products the logged-in customer already bought: True, False, or "auto" (hide them
    # except in categories customers buy again, those with a replenishment profile).
    "EXCLUDE_PURCHASED": "auto",
    # Only suggest the next tier up when it costs at most this many times the current price.
    "UPGRADE_MAX_PRICE_RATIO": 1.5,
    # A product page never shows computed partners or bestsellers dearer than this many
    # times the product (a ¥380 filter does not recommend a ¥29,800 machine); staff links
    # are never capped. None: no cap. 10 costs no hit rate on real orders (README,
    # "Price band"; benchmarks/price_band.py).
    "PARTNER_MAX_PRICE_RATIO": 10,
    # --- Cache ---------------------------------------------------------------------------
    "CACHE_ALIAS": "default",
    "CACHE_TIMEOUT": 60 * 60,
    # --- Affinity engine -----------------------------------------------------------------
    "MIN_CO_COUNT": 2,
    # 50, not 20: cart recommendations sum the partners of every cart item, and truncating
    # to 20 cost 0.01 of leave-one-out hit rate on Groceries (README, "Affinity engine").
    "TOP_K": 50,
    "LOOKBACK_DAYS": 365,
    # Recent orders weigh more when set (days); None weighs every order the same.
    "HALF_LIFE_DAYS": None,
    # Ranking metric for computed partners; see affinity.METRICS. Cosine was chosen by
    # leave-one-out evaluation on Groceries (best hit rate@10, far more catalogue coverage
    # than confidence or co_count); see the README's "Affinity engine" section.
    "METRIC": "cosine",
    # How each order weighs in the affinity metrics (co_count stays the plain order count):
    # "none" (every order the same), "inverse_size" (1 / distinct products of the order: a
    # 40-product order says less about each of its pairs than a 2-product one) or "bm25"
    # (implicit's BM25 order weight, idf = log(products / (1 + size)), squared). Multiplies
    # with HALF_LIFE_DAYS. Chosen by measurement: README "Choosing the defaults".
    "ORDER_WEIGHTING": "inverse_size",
    # Orders with more distinct products than this are left out of the pairs (one
    # 1,000-product order alone makes 500k pairs); they still count as sales. None: no cap.
    "MAX_BASKET_SIZE": 300,
    # Where the bestseller fallback comes from: "run" (each product's order count stored
    # with the current affinity run: one small indexed query) or "order_lines" (aggregate
    # the order lines of the lookback window on every cold cache, the behaviour before 0.x).
    "BESTSELLERS_SOURCE": "run",
    # Keep each run's integer counts (every pair of the window, item and order counts) so
    # that run_recompute(incremental=True) (the recompute_incremental task, crosssell_recompute
    # --incremental) can add the new orders and subtract those that left the window instead
    # of reading everything again. Costs storing the counts with each run (11 MB for a 1M-line
    # shop); with ORDER_SOURCE also a read of each line's time. README "Incremental recompute".
    "INCREMENTAL": False,
    # An incremental run becomes a full one (which reconciles edited or cancelled orders,
    # deleted products and changed settings) when the last full run is older than this
    # many days; None never forces one.
    "INCREMENTAL_RECONCILE_DAYS": 7,
    # Where the engine's blocks are computed: "local" (the recompute's process) or "dask"
    # (tasks on the existing Dask cluster at DASK_SCHEDULER, e.g. "tcp://10.0.0.5:8786";
    # pip install django-crosssell[dask]). README "Scaling out on Dask".
    "ENGINE": "local",
    "DASK_SCHEDULER": None,
    # Where a full recompute reads the order lines with ENGINE = "dask": "local" (the
    # recompute's process reads them all) or "sharded" (each Dask worker reads a range of
    # order ids and counts its pairs; the counts are added on the cluster, so no process
    # holds every line). Needs ORDER_LINE_MODEL (not ORDER_SOURCE) and INCREMENTAL off;
    # the workers need the project's code, settings and database. README "Scaling out on Dask".
    "DASK_READ": "local",
    # Order-id ranges of a sharded read; None: two per worker thread of the cluster.
    "DASK_SHARDS": None,
    # Cold start: products with no co-purchase partner in a run (new ones, rarely bought
    # ones) get content neighbours from their names, stored with the run and shown after
    # staff links and partners as "Similar products". README "Cold start".
    "SIMILAR_PRODUCTS": True,
    # Product fields whose text is compared (add a description field to compare more).
    "SIMILAR_TEXT_FIELDS": ["name"],
    # "boost" (same-category neighbours score 1.5x), "restrict" (same category only) or
    # None (categories ignored). Needs CATEGORY_FIELD.
    "SIMILAR_CATEGORY": "boost",
    # Neighbours stored per product, and the least cosine similarity of two names kept.
    "SIMILAR_TOP_K": 10,
    "SIMILAR_MIN_SCORE": 0.1,
    # Completed affinity runs kept (the current one included).
    "KEEP_RUNS": 3,
    # A recompute that reads fewer orders than this share of the current run's (or none at
    # all) is refused and the current run stays, unless it is run with allow_shrink: an
    # emptied ORDER_FILTER or a broken ORDER_SOURCE must not wipe the recommendations.
    # A number from 0 to 1; 0 only refuses a read of no orders.
    "MIN_ORDERS_RATIO": 0.5,
    # --- Bundles -------------------------------------------------------------------------
    # Digits after the decimal point of the shop's currency (0 for yen).
    "CURRENCY_DECIMALS": 0,
    # A rounding mode name from the ``decimal`` module.
    "ROUNDING": "ROUND_HALF_UP",
    # --- REST API ------------------------------------------------------------------------
    # Dotted path to the serializer class used for products in API responses.
    "PRODUCT_SERIALIZER": None,
    "API_MAX_CART_LINES": 50,
    "API_MAX_QUANTITY": 999,
    "API_THROTTLE_RATES": {"crosssell_anon": "120/min", "crosssell_user": "600/min"},
    # --- Load and faults (README "Load and faults") ------------------------------------
    # PostgreSQL statement_timeout and lock_timeout (milliseconds) of the queries a widget or
    # a public API endpoint runs; None: no bound. A widget that times out renders its stale
    # copy or nothing, an endpoint answers 503.
    "QUERY_TIMEOUT_MS": 500,
    "LOCK_TIMEOUT_MS": 200,
    # Seconds past its freshness (or an invalidation) a cached result may still be served
    # while one request computes the new one; 0 turns stale-while-revalidate off.
    "STALE_SECONDS": 300,
    # Milliseconds a request with nothing cached waits for another request computing the
    # same result before computing it itself.
    "CACHE_LOCK_WAIT_MS": 500,
    # Reverse proxies in front of the site that append to X-Forwarded-For; the throttles
    # key anonymous clients by the address the outermost trusted proxy saw. 0 (the default)
    # uses REMOTE_ADDR and ignores X-Forwarded-For, which any client can write.
    "NUM_PROXIES": 0,
    # Largest request body (bytes) the API parses; larger bodies are refused (413) unread.
    "API_MAX_BODY_BYTES": 64 * 1024,
    # Latest year a date (campaign windows) may have.
    "MAX_YEAR": 2100,
    # A recompute running longer than this (seconds) is stopped by the watchdog task.
    "RECOMPUTE_MAX_SECONDS": 6 * 60 * 60,
    # --- After the purchase: follow-up and replenishment mail (django_crosssell.followup) --
    # README "After the purchase". Off by default: while False, flows schedule nothing, the
    # due scan sends nothing, and the sender checks (crosssell.E080...) are not run.
    "FOLLOWUP_ENABLED": False,
    # Who sends (特定電子メール法 / 特定商取引法: shown at the foot of every mail; checked by
    # crosssell.E080-E082 and W081): the shop's or company's name, its postal address, where
    # complaints and questions go (a phone number, an e-mail address or a URL) and a phone
    # number for mail-order advertising.
    "FOLLOWUP_SENDER_NAME": "",
    "FOLLOWUP_SENDER_ADDRESS": "",
    "FOLLOWUP_SENDER_CONTACT": "",
    "FOLLOWUP_SENDER_PHONE": "",
    # The person responsible for sending (送信責任者), when not the sender itself; "" omits it.
    "FOLLOWUP_SENDER_RESPONSIBLE": "",
    # From header; None uses DEFAULT_FROM_EMAIL. Reply-To addresses (a list) may be empty.
    "FOLLOWUP_FROM_EMAIL": None,
    "FOLLOWUP_REPLY_TO": [],
    # Absolute URL of the shop ("https://shop.example.jp"): mails have no request, and their
    # product and unsubscribe links must be absolute (crosssell.E083, W080 when not https).
    "FOLLOWUP_SITE_URL": "",
    # Optional "mailto:" address added to the List-Unsubscribe header next to the https URL.
    "FOLLOWUP_UNSUBSCRIBE_MAILTO": "",
    # Marketing mails one address may get: a list of [count, days] windows (1 per 7 days and
    # 4 per 30 days). A mail over a cap is skipped with the reason "frequency_cap".
    "FOLLOWUP_FREQUENCY_CAPS": [[1, 7], [4, 30]],
    # [start hour, end hour] in FOLLOWUP_TIME_ZONE when no mail is sent (21:00-08:00); a mail
    # due then waits until the end. None sends at any hour.
    "FOLLOWUP_QUIET_HOURS": [21, 8],
    # The shop's time zone for quiet hours; None uses TIME_ZONE.
    "FOLLOWUP_TIME_ZONE": None,
    # Days after the trigger before a follow-up mail, when its flow does not say.
    "FOLLOWUP_DELAY_AFTER_DELIVERY_DAYS": 7,
    "FOLLOWUP_DELAY_AFTER_PAYMENT_DAYS": 14,
    # Products shown in one mail (the replenished product counts as one).
    "FOLLOWUP_ITEMS": 4,
    # Messages one due scan handles at most (a scan every few minutes catches up).
    "FOLLOWUP_SCAN_BATCH": 200,
    # Dotted path to a callable name -> audience (a callable or a queryset) that resolves
    # audience names which are not dotted paths (the customers package's saved audiences).
    "FOLLOWUP_AUDIENCE_RESOLVER": None,
    # Replenishment: days before the supply should run out that the reminder is due.
    "REPLENISHMENT_LEAD_DAYS": 3,
    # How many repeat gaps the staff interval weighs as (shrinkage of the learned interval):
    # learned = (n * median + weight * staff) / (n + weight).
    "REPLENISHMENT_PRIOR_WEIGHT": 10,
    # Gaps needed before a learned interval is used without a staff value, and before the
    # learning suggests a profile (created inactive) for a product without one.
    "REPLENISHMENT_MIN_SAMPLE": 5,
    # A customer's own repeat gaps needed before their own median replaces the product's.
    "REPLENISHMENT_MIN_OWN_GAPS": 1,
    # Orders read when learning intervals (days back).
    "REPLENISHMENT_LOOKBACK_DAYS": 730,
    # Subscription (定期購入) suggestion: a customer's repeat purchases of a product are
    # regular when they have at least this many gaps and the gaps' coefficient of variation
    # (standard deviation / mean) is at most SUBSCRIPTION_MAX_CV.
    "SUBSCRIPTION_MIN_GAPS": 3,
    "SUBSCRIPTION_MAX_CV": 0.25,
    # --- Measuring the effect (django_crosssell.measure; README "Measuring the effect") -----
    # "always": serves and events of every visitor who is not excluded (staff, bots,
    # prefetches, HEAD) are recorded, first-party and hashed; "consent": only when the
    # TRACKING_CONSENT callable says yes for the request; "off": nothing is written.
    "TRACKING": "always",
    # Dotted path to ``callable(request) -> bool`` (TRACKING = "consent").
    "TRACKING_CONSENT": None,
    # Names of the first-party cookies: the visitor (one year) and the browser session.
    "TRACKING_COOKIE": "crosssell_vid",
    "TRACKING_SESSION_COOKIE": "crosssell_sid",
    # The event endpoint: events per request, bytes per request, requests per minute per
    # visitor (or address).
    "TRACKING_MAX_BATCH": 50,
    "TRACKING_MAX_BODY": 16_384,
    "TRACKING_RATE_PER_MINUTE": 120,
    # Raw serves and events older than this are purged by the periodic task (rollups stay).
    "EVENT_RETENTION_DAYS": 90,
    # An order line is attributed to the last click on its product within this many days.
    "ATTRIBUTION_WINDOW_DAYS": 7,
    # Share of visitors (0 to 0.5) who see no recommendations at all (global holdout).
    "HOLDOUT": 0.0,
    # Staff preview of a variant: ?crosssell_variant=EXPERIMENT_KEY:VARIANT_KEY
    "EXPERIMENT_PREVIEW_PARAM": "crosssell_variant",
    # --- Know the customers: RFM snapshot, audiences, personal recommendations -------------
    # (django_crosssell.customers; README "Know the customers"). How R, F and M scores are
    # given: "quantile" (quintiles of this shop's customers), "ja_repeat" / "ja_one_off"
    # (fixed Japanese thresholds for repeat-buy and one-off-purchase shops), "tertile"
    # (three groups, scored 1, 3, 5: small shops).
    "CUSTOMERS_SCORER": "quantile",
    # Orders read by the snapshot (days back); None reads the whole history.
    "CUSTOMERS_LOOKBACK_DAYS": None,
    # Snapshots kept for the transitions chart (the latest included).
    "CUSTOMERS_KEEP_SNAPSHOTS": 30,
    # The customer model the snapshot learns for personal recommendations (EASE item weights;
    # benchmarks/personal.py): on or off, its regularisation, weights kept per product, and
    # the most bought products that take part (a dense matrix of this size is inverted).
    "CUSTOMERS_MODEL": True,
    "CUSTOMERS_MODEL_L2": 200.0,
    "CUSTOMERS_MODEL_TOP_K": 50,
    "CUSTOMERS_MODEL_MAX_ITEMS": 5000,
    # Personal recommendations ("for you"): half-life in days of the weight of a customer's
    # past purchases (None: every purchase counts the same, the measured best), and how many
    # of their most recent distinct products are read.
    "PERSONAL_HALF_LIFE_DAYS": None,
    "PERSONAL_HISTORY_ITEMS": 100,
}

#: Metric names accepted by ``METRIC`` (kept here so checks need not import numpy).
METRIC_CHOICES = ("cosine", "confidence", "co_count", "support", "lift", "jaccard")
#: Values of ``ORDER_WEIGHTING`` (``affinity.WEIGHTINGS`` repeats them for the engine).
WEIGHTING_CHOICES = ("none", "inverse_size", "bm25")
#: Values of ``SIMILAR_CATEGORY``.
SIMILAR_CATEGORY_CHOICES = ("boost", "restrict", None)
#: Values of ``ENGINE``.
ENGINE_CHOICES = ("local", "dask")
#: Values of ``DASK_READ``.
DASK_READ_CHOICES = ("local", "sharded")
#: Values of ``BESTSELLERS_SOURCE``.
BESTSELLERS_SOURCES = ("run", "order_lines")


class CrossSellSettings:
    """Attribute access to the ``CROSSSELL`` dict with defaults, cached until reloaded."""

    def __init__(self, defaults: dict[str, Any] | None = None) -> None:
        self.defaults = defaults or DEFAULTS
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(django_settings, "CROSSSELL", None)
        return value if isinstance(value, dict) else {}

    def adapter_defaults(self) -> dict[str, Any]:
        """The defaults the configured ``ADAPTER`` class implies (its ``default_settings()``).

        They sit between the host's ``CROSSSELL`` and :data:`DEFAULTS`, so an adapter for a
        framework (django-oscar) can say where its orders live and what its currency is, and
        the host's settings need nothing but the ``ADAPTER`` line. A broken ``ADAPTER``
        implies nothing here; system check ``crosssell.E016`` reports it.
        """
        path = self.user_settings.get("ADAPTER")
        if not path:
            return {}
        try:
            implied = import_string(path).default_settings()
        except (ImportError, AttributeError, TypeError):
            return {}
        return dict(implied) if isinstance(implied, dict) else {}

    def __getattr__(self, name: str) -> Any:
        if name not in self.defaults:
            raise AttributeError(f"Invalid django-crosssell setting: {name!r}")
        user = self.user_settings
        implied: dict[str, Any] = {}
        if name != "ADAPTER":
            # once per (re)load, not once per setting: importing the adapter is the dear part
            if "_implied" not in self.__dict__:
                self.__dict__["_implied"] = self.adapter_defaults()
            implied = self.__dict__["_implied"]
        value = user.get(name, implied.get(name, self.defaults[name]))
        if name == "ORDER_LINE_FIELDS":
            value = {
                **DEFAULT_ORDER_LINE_FIELDS,
                **(implied.get(name) or {}),
                **(user.get(name) or {}),
            }
        self._cached.add(name)
        setattr(self, name, value)
        return value

    def reload(self) -> None:
        for name in self._cached:
            delattr(self, name)
        self._cached.clear()
        self.__dict__.pop("_implied", None)


app_settings = CrossSellSettings()


@receiver(setting_changed)
def _reload_settings(*, setting: str, **kwargs: Any) -> None:
    if setting in ("CROSSSELL", PRODUCT_MODEL_SETTING):
        app_settings.reload()


def get_product_model_label() -> str:
    label = getattr(django_settings, PRODUCT_MODEL_SETTING, None)
    if not label:
        raise ImproperlyConfigured(
            f"{PRODUCT_MODEL_SETTING} must name the shop's product model, e.g. 'shop.Product'."
        )
    return label


def get_product_model() -> type[models.Model]:
    """Return the host's product model, like ``get_user_model()`` does for users."""
    label = get_product_model_label()
    try:
        return apps.get_model(label, require_ready=False)
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"{PRODUCT_MODEL_SETTING} must be of the form 'app_label.ModelName', not {label!r}."
        ) from exc
    except LookupError as exc:
        raise ImproperlyConfigured(
            f"{PRODUCT_MODEL_SETTING} refers to model {label!r} that has not been installed."
        ) from exc


def product_does_not_exist() -> type[ObjectDoesNotExist]:
    """The product model's ``DoesNotExist``, for ``except`` clauses.

    Every concrete model has one, but the swappable model is only known as ``type[Model]``,
    which the stubs give no ``DoesNotExist``.
    """
    model: Any = get_product_model()
    return cast(type[ObjectDoesNotExist], model.DoesNotExist)


def get_order_line_model() -> type[models.Model] | None:
    label = app_settings.ORDER_LINE_MODEL
    if not label:
        return None
    try:
        return apps.get_model(label, require_ready=False)
    except (ValueError, LookupError) as exc:
        raise ImproperlyConfigured(
            f"CROSSSELL['ORDER_LINE_MODEL'] refers to {label!r}, which is not an installed model."
        ) from exc
