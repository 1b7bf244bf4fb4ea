"""The API client every component uses: async verbs, watches, shared informers."""

from kubeling.api.errors import ApiError
from kubeling.client.client import Client, WatchEvent
from kubeling.client.informer import Informer, InformerFactory, object_key
from kubeling.client.transport import HttpTransport, InProcessTransport, Transport

__all__ = [
    "ApiError",
    "Client",
    "HttpTransport",
    "InProcessTransport",
    "Informer",
    "InformerFactory",
    "Transport",
    "WatchEvent",
    "object_key",
]
