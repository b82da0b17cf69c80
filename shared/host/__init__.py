"""The local and on-premises host: an ASGI app built from function_app.py's own registrations
(asgi), the NCRONTAB schedule its timer follows (ncrontab), JSON log lines (log_format),
deadlines for slow clients (deadlines), and the runtime settings of a worker process (tuning).

Imports from shared/: errors only; it hosts the gateway and is no part of it.
"""
