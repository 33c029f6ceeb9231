"""From verdicts to what people and tools read: the result row and its
schema (rows.py), and the formats that read rows: Parquet (parquet.py),
JSON lines (jsonl.py) and Veraison EAR (ear.py)."""
