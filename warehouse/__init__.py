"""The reporting warehouse: tables, migrations and the loader (embedded DuckDB or PostgreSQL).

``warehouse.db`` connects and migrates, ``warehouse.tables`` is the table model and
``warehouse.load`` records and publishes loads. BI tools read only the ``reporting`` views.
"""
