"""Rate limits and quotas: a system's limits (config), the counters one request touches (plan),
the stores that keep them in process or in Redis (store, store_memory, store_redis, lua/) and
the Redis store's own pipelined connection (redis_channel), admission and settlement (limiter),
the headers that report them (headers), what a system's counters in Redis hold now (counters),
and prompt-token estimates (tokens).

Imports from shared/: the bottom layer (settings, errors, routes, protection).
"""
