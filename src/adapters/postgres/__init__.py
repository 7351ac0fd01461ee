"""PostgreSQL: `DocumentRepository`, `VectorIndex` (pgvector), `KeywordIndex` and `UnitOfWork`."""
