"""The local and on-premises host: an ASGI app built from function_app.py's own registrations
(asgi), the NCRONTAB schedule its timer follows (ncrontab), and JSON log lines (log_format).

Imports from shared/: nothing; it hosts the gateway and is no part of it.
"""
