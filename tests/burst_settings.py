"""The example site as deployed (its database and cache settings from the environment), for
the burst tests and benchmarks/bench_burst.py, which serve it from real server processes.

On top of example_site.settings, from the environment:

- ``BURST_CACHE_KEY_PREFIX``: a key prefix of the run's own in the shared Redis cache, so
  a run counts (and then deletes) only its own keys;
- ``BURST_THROTTLE``: ``off`` raises the throttles far above any burst, so every request
  does its full work (the database burst); otherwise the example site's rates apply;
- ``BURST_MAX_UNJOINED``: ``MAX_UNJOINED_PER_VISITOR`` (``none`` for no limit); every
  request of a burst comes from 127.0.0.1, i.e. from one visitor.
"""

import os

from example_site.settings import *  # noqa: F403
from example_site.settings import REDIS_URL, VOICE_WIDGET

if REDIS_URL and os.environ.get("BURST_CACHE_KEY_PREFIX"):
    CACHES["default"]["KEY_PREFIX"] = os.environ["BURST_CACHE_KEY_PREFIX"]  # noqa: F405

_unjoined = os.environ.get("BURST_MAX_UNJOINED", "")
VOICE_WIDGET = {
    **VOICE_WIDGET,
    "MAX_UNJOINED_PER_VISITOR": None if _unjoined == "none" else int(_unjoined or 2),
}
# No worker runs: the heartbeat written at setup stands for one for the whole run.
VOICE_WIDGET["HEARTBEAT_TIMEOUT"] = 24 * 60 * 60
if os.environ.get("BURST_THROTTLE") == "off":
    VOICE_WIDGET["THROTTLE_RATES"] = {"anon": "1000000/minute", "user": "1000000/minute"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
