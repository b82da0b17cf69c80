"""Content policies on prompts and answers: a system's policy (policy), what a check found and
how a refusal says it (verdict), the text a check reads (texts), the checks made in the gateway
itself (local), Azure AI Content Safety and Prompt Shields (content_safety), a policy applied to
a prompt or an answer's text (checks), whole answers checked and rewritten (answers), streamed
answers checked as they go (stream_guard), and blocklists copied to Content Safety
(blocklist_sync).

Imports from shared/: the layers below it (up to limits and auth).
"""
