"""Pure: parse and validate AppSpec files for all three compute platforms; lifecycle event catalogue."""
