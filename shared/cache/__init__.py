"""The opt-in response cache: a system's policy for it (policy), the key of a request
(key), where answers are kept (store: in-process, bounded in bytes; store_redis: shared across
instances), which answers may be kept and what a stream adds up to (assemble), and a kept answer
replayed as a stream (replay).

Imports from shared/: the layers below it (up to storage).
"""
