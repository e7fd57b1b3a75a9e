"""edgeagent.converters: trained adapters and models into the formats devices run.

- merge:      a PEFT LoRA adapter merged into its base (fp32/fp16/bf16), saved as an HF folder
- hf_gguf:    an HF folder -> GGUF (F32/F16/BF16), llama and qwen2, with gguf-py
- quantize:   GGUF -> Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q4_0, IQ4_NL with libllama's quantizer
- selfcheck:  top-1 agreement and perplexity of an export against its source
- pipeline:   `edgeagent export gguf`: merge -> GGUF -> quantize -> self-check
- lora_gguf:  a PEFT LoRA adapter -> a GGUF LoRA adapter llama.cpp switches at run time
"""
