"""Tollgate's gateway core. Knows nothing of the Azure Functions host."""
