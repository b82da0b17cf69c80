"""What each request used and cost: its account (account), its usage record (record), usage read
off a stream (stream_tap), the sink that batches records to storage (sink), opt-in content logs
(content), and OpenTelemetry metrics (telemetry).

Imports from shared/: the layers below it (up to storage).
"""
