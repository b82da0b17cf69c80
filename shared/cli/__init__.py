"""The `tollgate` command: dispatch (main, __main__), run and serve (serve), systems and keys
(systems), bench, latency and usage reports (report, usage_report, dates) and audit; errors
holds the one error a command reports.

Imports from shared/: anything.
"""
