"""Generation engines: `hf` (HF transformers, the reference), `openvino` (OpenVINO GenAI, fast on CPUs), `vllm`
(vLLM, CUDA GPUs only)."""
