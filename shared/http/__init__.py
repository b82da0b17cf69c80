"""The request path: the route handlers (handlers for model calls with a JSON body; uploads for
multipart ones, audio and image edits; responses_api for the Responses API's calls beside create;
files_api and batches_api for files and batches, with batch_files checking a batch input file and
owned keeping each system to its own files and batches), one request's frame from account to access
line (frame), the checks a model call passes before its upstream (policy), the response cache on the
request path (cached), content policies on it (screening), readiness (readiness), metrics for
Prometheus (metrics_page) and who may read them (admin_access), the operators' status page (status),
reading a request (inbound), a multipart body read and written as it streams (multipart), what its
JSON body must be (body), and who the caller is and what they may do (access).

Imports from shared/: the layers below it (up to report).
"""
