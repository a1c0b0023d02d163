"""The HTTP feature server (``parity serve``): online reads, push, materialization, the
registry read-only, health, readiness, Prometheus metrics. Depends on the core; the core
never imports it.
"""

from parity.server.app import AppSettings, ParityApp, create_app
from parity.server.cache import CacheSettings, ServingOnlineStore
from parity.server.errors import CODES, ApiError
from parity.server.run import ServerSettings, serve
from parity.server.serving import Serving

__all__ = [
    "CODES",
    "ApiError",
    "AppSettings",
    "CacheSettings",
    "ParityApp",
    "ServerSettings",
    "Serving",
    "ServingOnlineStore",
    "create_app",
    "serve",
]
