from tests.api.conftest import (  # noqa: F401  (the API tests' fixtures)
    _no_throttling,
    anon_client,
    catalogue,
    staff_client,
    staff_user,
)
