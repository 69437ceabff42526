"""Defaults the command line shows in its help, apart so that ``--help`` imports nothing heavy."""

DEFAULT_WAREHOUSE = "duckdb:///brukardata.duckdb"
DEFAULT_KOLADA_URL = "https://api.kolada.se"
