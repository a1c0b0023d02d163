"""Online stores: latest feature values per entity for low-latency serving."""
