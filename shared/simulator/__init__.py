"""An OpenAI / Azure OpenAI compatible upstream simulator (aiohttp), with fault injection: the
gateway's embedded default upstream, and the real HTTP server its tests and benchmarks call.
The app and its routes (app, handlers, embeddings, responses, streaming), the payloads (wire,
content, errors), its state (state, config), the `/_sim/` control API (control, faults), and
`python -m shared.simulator` (__main__).

Stored Responses API answers, with background mode and stream resumption, live in stored; the
legacy completions operation (prompts, `text_completion` answers and their stream frames) in
completions. Azure AI Foundry's model-inference paths (`/models/chat/completions`,
`/models/embeddings`) run through the same handlers, with Azure's auth and errors; Entra ID
bearer tokens, when an audience is configured, are read in entra. Image generation
(`/images/generations`: one tiny PNG, as base64 or at a `/_sim/images/` URL) lives in images.

Imports from shared/: nothing; it stands where Azure OpenAI would.
"""
