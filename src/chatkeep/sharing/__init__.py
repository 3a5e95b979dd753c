"""Share links (read-only views of a session up to a boundary) and forks (independent copies)."""
