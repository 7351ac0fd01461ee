"""Adapters, one package per technology (faiss, sqlite, postgres, memory), each naming its port."""
