"""vsag benchmark: vsag vs pgvector HNSW in one PostgreSQL server, same data, same run."""
