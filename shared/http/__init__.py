"""The request path: the route handlers (handlers), reading a request (inbound), what its JSON body
must be (body), and who the caller is and what they may do (access).

Imports from shared/: the layers below it (up to probe and gateway).
"""
