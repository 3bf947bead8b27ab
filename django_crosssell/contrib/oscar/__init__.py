"""django-crosssell for django-oscar shops.

Install with ``pip install "django-crosssell[oscar]"``, add ``django_crosssell`` and
``django_crosssell.contrib.oscar`` to ``INSTALLED_APPS``, and set::

    CROSSSELL_PRODUCT_MODEL = "catalogue.Product"
    CROSSSELL = {"ADAPTER": "django_crosssell.contrib.oscar.adapter.OscarAdapter"}

The modules:

* :mod:`.adapter`: :class:`~.adapter.OscarAdapter`, prices and availability from Oscar's
  strategy and stock records, variants rolled up to their parent, Oscar's basket as a cart,
  and the ``CROSSSELL`` defaults an Oscar shop needs (orders, currency, price format);
* :mod:`.orders`: Oscar's order lines for the affinity engine (variants as their parent,
  cancelled orders left out);
* :mod:`.offers` and :mod:`.models`: the site offer through which Oscar charges exactly the
  discount ``bundles.evaluate`` computes;
* :mod:`.signals`: widget cache invalidation when a stock record's price or availability
  changes (an order that sells the last unit included);
* :mod:`.admin`: the curated-links inline on Oscar's product admin;
* management commands ``crosssell_oscar_install_offer`` and
  ``crosssell_import_oscar_recommendations``.
"""
