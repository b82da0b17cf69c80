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
(`/images/generations`: one tiny PNG, as base64 or at a `/_sim/images/` URL) lives in images;
image edits (`/images/edits`, multipart) answer the same way, in image_edits.

Multipart bodies are read streamed (uploads), each file part's size and SHA-256 kept for
`/_sim/uploads`. Files (`/files`) are kept in memory (files, files_api); batches (`/batches`:
batches, batches_api) check their input file's lines and answer each one (batch_lines) with the
same non-streamed answers the routes give (answers), their life computed from the clock
(`batch_ms`).
Audio: transcriptions and translations of a WAV (transcriptions, its duration from the header read
in audio), and speech streamed as a WAV tone (speech); `audio.wav_bytes` makes a WAV for tests.
The steps the operations share (latency and faults, answers and errors) live in pipeline.

Imports from shared/: nothing; it stands where Azure OpenAI would.
"""
