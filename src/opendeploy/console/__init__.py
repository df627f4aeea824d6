"""Web console: server-rendered pages over the same store the API uses (people layer)."""
