"""SQLite: the durable `DocumentRepository` (with its rows, schema, writes); FTS5 `KeywordIndex`."""
