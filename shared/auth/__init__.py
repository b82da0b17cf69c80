"""Credentials: gateway keys (keys), Entra ID caller tokens (entra, jwks), and upstream keys from
the environment or Key Vault (secrets, secret_cache).

Imports from shared/: the bottom layer (settings, errors, routes, protection).
"""
