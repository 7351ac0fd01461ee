"""Benchmarks for kb-service: retrieval quality (BEIR) and speed, run against the HTTP API."""
