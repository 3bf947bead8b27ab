"""Settings of the server that ``benchmarks/api.py`` starts: the example shop, DEBUG off,
throttling off (every request of the load check comes from 127.0.0.1, and the point is to
measure the endpoint, not to be told to slow down)."""

from example_shop.settings import *  # noqa: F403
from example_shop.settings import CROSSSELL

DEBUG = False
CROSSSELL = {
    **CROSSSELL,
    "API_THROTTLE_RATES": {"crosssell_anon": None, "crosssell_user": None},
}
# The dev server logs every request on stderr; the benchmark discards it anyway.
LOGGING = {"version": 1, "disable_existing_loggers": False}
