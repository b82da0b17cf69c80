"""The periodic latency probe, direct and through the gateway: one run (run), its timed requests
(measure) with their first content token spotted in the stream (first_token), its
seed-compatible CSV rows (latency_csv), its failures counted for the log (failures), and their
delivery to storage (delivery).

Imports from shared/: the layers below it (up to upstream and registry).
"""
