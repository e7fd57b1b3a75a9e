"""edgeagent.converters: merge adapters, HF -> GGUF, GGUF quantization, GGUF LoRA adapters, ONNX.

Each export format will live in its own package here and register itself in one name-keyed
registry (see DESIGN.md). Nothing is registered yet: the converters land with their own issue.
"""
