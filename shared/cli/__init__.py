"""The `tollgate` command: dispatch (main, __main__), run and serve (serve), bench, latency and
usage reports (report, usage_report, dates), and the registry commands: systems, keys, limits
(limits_view shows them), live usage (live_usage, reading the limits' counters), spend against
budgets (spend), blocklists and audit, built from registry_io (the registry, where says which),
system_views, output, differences, confirm and model_names; errors holds the one error a command
reports.

Imports from shared/: anything.
"""
