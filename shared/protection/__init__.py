"""Data protection: network allow-lists (netacl), the client's address through trusted proxies
(client_ip), and PII detection and redaction (pii, pii_detectors).

Imports from shared/: settings and errors only.
"""
