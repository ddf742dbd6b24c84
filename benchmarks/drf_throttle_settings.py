"""For benchmarks/bench_burst.py's reference run: the burst settings (``tests.burst_settings``)
with the session endpoint throttled by DRF's own ``AnonRateThrottle`` (a history list read and
written back) instead of voice_widget's atomic counter, at the same rate."""

from tests.burst_settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.drf_throttle_urls"
