"""From verdicts to what people and tools read: the result row and its
schema (rows.py), and the formats that read rows: Parquet (parquet.py),
JSON lines (rows.json_line) and Veraison EAR (ear.py)."""
