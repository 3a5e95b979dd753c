"""Small example agents that ship with chatkeep."""
