"""Online stores: latest feature values per entity for low-latency serving.

``base`` is the contract every store keeps and its optional abilities (``SupportsUpdate``,
``SupportsAsyncRead``); ``encoding``, ``writer`` and ``reader`` are the record format and the
way rows become records and records become answers, the same for every store. Each store is
a subpackage owning its config and code (``sqlite/``, ``redis/``), found by its ``type:``
through the ``parity.online_stores`` entry points (``parity.plugins``).
"""
