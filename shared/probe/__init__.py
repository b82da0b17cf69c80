"""The periodic latency probe, direct and through the gateway: one run (run), its timed requests
(measure), its seed-compatible CSV rows (latency_csv), and their delivery to storage (delivery).

Imports from shared/: the layers below it (up to upstream and registry).
"""
