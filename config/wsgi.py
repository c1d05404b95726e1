import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Garbage collection tuned for the ingest path (issue 13). A 100-span request builds tens of thousands
# of dicts and lists that live until it answers, so with CPython's default threshold (700) they were
# promoted to the old generation, and every few requests a full collection walked the whole heap —
# Django, every app's modules, the price catalog: about 0.75 s each in `make bench-ingest`'s own process,
# on average about 100 µs of CPU per span, as much as mapping the spans. So: import every view now (the URL
# conf pulls in the apps' modules), move what exists after startup out of the collector's reach
# (`gc.freeze`: it is never garbage), and collect the young generation every 10,000 allocations
# instead of 700. Measured in one process on the OpenInference workload (rounds of 3,000 spans): GC ≈ 100 → 4 µs per span.
from django.urls import get_resolver  # noqa: E402 - after the application is set up

get_resolver().url_patterns  # noqa: B018 - loading it imports every view
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 20, 20)
