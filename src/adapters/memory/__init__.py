"""In memory: the volatile `DocumentRepository`, with its packed records and chunk owners."""
