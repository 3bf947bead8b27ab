"""REST API for headless shops (Django REST framework).

Include ``django_crosssell.api.urls`` under a prefix of your choice. The views are thin: they
validate input, call the service layer (``recommend``, ``bundles``, ``recompute``) and
serialise what it returns, so the storefront over HTTP shows exactly what the template tags
show.
"""
