"""Bundle discounts: which bundles a cart earns, what one more item would unlock, and offers.

The public API (``from django_crosssell import bundles``):

* :func:`evaluate` (one query) and :func:`evaluate_rules` (what-if, no query), returning a
  :class:`BundleEvaluation` with :class:`AppliedBundle` s and :class:`Nudge` s;
* :func:`offers_for_product` (cached) and :func:`preview` (admin), returning
  :class:`BundleOffer` s; :func:`qualifying_products` (a mix-and-match offer's page);
* :class:`CartLine` (the adapter's), :func:`application_discount`, :func:`product_price`,
  :func:`product_prices` and :func:`fetch_rules`.

The modules, each importing only the ones before it:

* :mod:`.solver`: the pure search (slots, patterns, branch and bound, HiGHS fallback);
* :mod:`.messages`: nudge and offer sentences;
* :mod:`.types`: the public data types;
* :mod:`.rules`: reading rules in one query, prices through the adapter;
* :mod:`.evaluate`: the cart's assignment and its nudges;
* :mod:`.offers`: product page offers and the admin preview.

Money goes through :mod:`django_crosssell.money`, product keys through
:mod:`django_crosssell.products`, prices, availability and canonical products through the
host adapter (:mod:`django_crosssell.adapter`).
"""

from .evaluate import evaluate, evaluate_rules
from .offers import offers_for_product, preview, qualifying_products
from .rules import application_discount, fetch_rules, product_price, product_prices
from .types import AppliedBundle, BundleEvaluation, BundleOffer, CartLine, MissingItem, Nudge

__all__ = [
    "AppliedBundle",
    "BundleEvaluation",
    "BundleOffer",
    "CartLine",
    "MissingItem",
    "Nudge",
    "application_discount",
    "evaluate",
    "evaluate_rules",
    "fetch_rules",
    "offers_for_product",
    "preview",
    "product_price",
    "product_prices",
    "qualifying_products",
]
