"""The request path: the route handlers (handlers, and responses_api for the Responses API's calls
beside create), one request's frame from account to access line (frame), the checks a model call
passes before its upstream (policy), reading a request (inbound), what its JSON body must be
(body), and who the caller is and what they may do (access).

Imports from shared/: the layers below it (up to probe and gateway).
"""
