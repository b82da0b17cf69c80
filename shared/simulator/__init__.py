"""An OpenAI / Azure OpenAI compatible upstream simulator (aiohttp), with fault injection: the
gateway's embedded default upstream, and the real HTTP server its tests and benchmarks call.

Imports from shared/: nothing; it stands where Azure OpenAI would.
"""
