"""A host's consent callable for the tests: yes when the ``measure_ok`` cookie is set."""


def from_cookie(request) -> bool:
    return request.COOKIES.get("measure_ok") == "1"
