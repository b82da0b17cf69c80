"""Reports on what the gateway wrote: latency statistics (stats) with their table, chart and page
(render), and usage summed from usage records (usage, usage_files).

Imports from shared/: the layers below it (up to probe and gateway).
"""
