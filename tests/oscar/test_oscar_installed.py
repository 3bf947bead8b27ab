"""The Oscar suite needs django-oscar: skip with the reason locally, fail on CI."""

from importlib.util import find_spec

import pytest

from tests.services import REQUIRED

REASON = (
    "django-oscar is not installed, so the Oscar suite did not run "
    "(pip install 'django-crosssell[oscar]', or make install)"
)


def test_django_oscar_is_installed():
    if find_spec("oscar") is None:
        if REQUIRED:
            pytest.fail(f"{REASON} (CROSSSELL_REQUIRE_SERVICES=1, so this cannot be skipped)")
        pytest.skip(REASON)
