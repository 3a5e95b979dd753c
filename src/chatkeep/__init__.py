"""chatkeep: a self-hostable chat-session server for LLM applications."""

__version__ = "0.1.0"
