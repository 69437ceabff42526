"""Defaults the command line shows in its help, kept apart so that ``--help`` imports nothing heavy."""

DEFAULT_WAREHOUSE = "duckdb:///brukardata.duckdb"
DEFAULT_KOLADA_URL = "https://api.kolada.se"
