"""OpenAI-compatible /v1/chat/completions with stored history injected into every call."""
