"""The request path: the route handlers (handlers), reading and checking a request (inbound), and
who the caller is and what they may do (access).

Imports from shared/: the layers below it (up to probe and gateway).
"""
