"""SQLite: the durable `DocumentRepository` (+ rows, scans, schema, writes), FTS5 `KeywordIndex`."""
