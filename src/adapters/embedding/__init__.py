"""Embedding: plain model encoders (ONNX Runtime, torch) and the wrapper that makes an `Embedder`.

`encoder` is the package's port, `Encoder`: one model, a batch of texts in, normalised vectors
out, knowing of no callers. `onnx_encoder` (+ `onnx_export`, `onnx_cache`) and
`sentence_transformer_encoder` implement it, with `model_loader` and `tokens` shared by both.
`batching`'s `CoalescingEmbedder` implements the domain's `Embedder` port over any encoder,
batching concurrent callers' texts into its calls through `coalescer` (+ `batch_plan`).
`caching`'s `CachingEmbedder` sits in front of any `Embedder`, keeping the vectors of texts
already embedded in a `vector_cache.VectorCache` (KB_EMBEDDING_CACHE_MB).
"""
