"""Credentials: gateway keys (keys), Entra ID caller tokens (entra, jwks), upstream keys from
the environment or Key Vault (secrets, secret_cache), and the one provider of upstream credentials,
keys or Entra tokens for the gateway's own identity (upstream_credentials).

Imports from shared/: the bottom layer (settings, errors, routes, protection).
"""
