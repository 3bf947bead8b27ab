"""The Celery app of the test host (a host owns its app; the library only has shared tasks).

Configured from Django settings like a real host: eager with the in-memory broker unless
``CELERY_BROKER_URL`` is set. Imported by ``conftest.py`` so ``shared_task`` proxies bind
to it.
"""

from celery import Celery

app = Celery("tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["django_crosssell"])
