"""Where the gateway keeps things: a local folder or a blob container (location), append-only
files (append), whole documents filed by day (documents), and the Redis client with its Entra ID
sign-in (redis_client).

Imports from shared/: the layers below it (up to limits and auth).
"""
