"""Adapters, one package per technology (faiss, sqlite, postgres, memory, embedding), each naming
its port; `heap` (no port) hands freed memory back to the operating system for several of them."""
