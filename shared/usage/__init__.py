"""What each request used and cost: its account (account), its usage record (record), usage read
off a stream (stream_tap), the token counts of a usage block and the units priced otherwise
(counts), the length of uploaded audio (audio), the sink that batches records to storage (sink),
background responses metered when they end (background), batches metered when they end
(batches), budget alerts when spend crosses a threshold (alerts), opt-in content logs
(content), and OpenTelemetry metrics (telemetry).

Imports from shared/: the layers below it (up to storage).
"""
