#!/usr/bin/env python3
"""Makes the tiny random-weight models the runner's tests compare against, with Hugging Face
transformers as the reference (run on the H100 host, which has torch, transformers and tokenizers).

For each architecture variant: a folder in the layout a user downloads (config.json,
generation_config.json, *.safetensors [+ index], tokenizer.json, tokenizer_config.json) and
reference.json holding, for a fixed prompt of token ids, the logits of the last prompt position
after the batched prefill, the logits of the next 4 greedy decode steps, and 32 greedy tokens.

The weights are stored in the variant's dtype (bf16, f16 or f32); the reference is computed in
float32 from exactly the stored values, as our engine computes with f32 accumulation.
The tokenizer is a real byte-level BPE tokenizer.json, trained here on a few sentences so that the
vocabulary (and the embedding tables) stay small: a few MB for all models together.

usage: make_tiny_models.py OUT_DIR
"""
import json
import os
import sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM, GenerationConfig

VOCAB = 384
PROMPT = [1, 17, 42, 99, 7, 256, 31, 200, 5, 77, 150, 63]
DECODE_STEPS = 4
GREEDY_TOKENS = 32

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Layer streaming keeps only a few transformer layers in memory at a time.",
    "def forward(x):\n\treturn rmsnorm(x) * weight\n",
    "ROCm runs on AMD Radeon RX 7900 XTX graphics cards with 24 GB of VRAM.",
    "Numbers: 0 1 12 123 1234 12345; contractions: don't, I'm, WE'LL.",
]

# name -> (architecture, dtype, config overrides, shards)
VARIANTS = {
    "llama-gqa4-llama3rope": ("LlamaForCausalLM", torch.bfloat16, dict(
        num_attention_heads=4, num_key_value_heads=1, tie_word_embeddings=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
        rope_theta=500000.0), 1),
    "llama-mha-tied-f16": ("LlamaForCausalLM", torch.float16, dict(
        num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True), 1),
    "mistral-gqa2-f32": ("MistralForCausalLM", torch.float32, dict(
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False, sliding_window=None), 1),
    "qwen2-bias-tied": ("Qwen2ForCausalLM", torch.bfloat16, dict(
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True, use_sliding_window=False), 1),
    "qwen3-qknorm-headdim": ("Qwen3ForCausalLM", torch.bfloat16, dict(
        num_attention_heads=4, num_key_value_heads=2, head_dim=24, tie_word_embeddings=False,
        use_sliding_window=False), 1),
    "llama-sharded": ("LlamaForCausalLM", torch.bfloat16, dict(
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False), 3),
}

COMMON = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=160, num_hidden_layers=3,
              max_position_embeddings=256, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
              initializer_range=0.08)


def train_tokenizer(path):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(path)
    return tok.get_vocab_size()


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)
    for name, (arch, dtype, overrides, shards) in VARIANTS.items():
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        vocab = train_tokenizer(os.path.join(folder, "tokenizer.json"))
        assert vocab <= VOCAB, vocab
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True, "add_eos_token": False,
                       "model_max_length": 256, "tokenizer_class": "PreTrainedTokenizerFast"}, f, indent=2)

        model_type = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "mistral",
                      "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}[arch]
        from transformers import AutoConfig
        config = AutoConfig.for_model(model_type, **COMMON, **overrides)
        config.architectures = [arch]
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
        with torch.no_grad():
            for p in model.parameters():  # larger weights than the default init, so greedy has clear winners
                p.normal_(0.0, 0.08)
            for n, p in model.named_parameters():
                if n.endswith("norm.weight") or "layernorm" in n:
                    p.uniform_(0.8, 1.2)
        model = model.to(dtype)
        total = sum(p.numel() * p.element_size() for p in model.parameters())
        shard_size = f"{max(total // shards + 1, 1) // 1024 + 1}KB" if shards > 1 else "2GB"
        model.save_pretrained(folder, safe_serialization=True, max_shard_size=shard_size)
        GenerationConfig(bos_token_id=1, eos_token_id=2, do_sample=False).save_pretrained(folder)

        # The reference runs in float32 on the stored values.
        ref = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
        ids = torch.tensor([PROMPT])
        with torch.no_grad():
            out_prefill = ref(ids, use_cache=True)
            steps = [out_prefill.logits[0, -1].tolist()]
            past = out_prefill.past_key_values
            token = int(out_prefill.logits[0, -1].argmax())
            decoded = [token]
            for _ in range(DECODE_STEPS):
                step = ref(torch.tensor([[token]]), past_key_values=past, use_cache=True)
                past = step.past_key_values
                steps.append(step.logits[0, -1].tolist())
                token = int(step.logits[0, -1].argmax())
                decoded.append(token)
            greedy = ref.generate(ids, max_new_tokens=GREEDY_TOKENS, do_sample=False, eos_token_id=None,
                                  pad_token_id=0)[0, len(PROMPT):].tolist()
        assert greedy[:len(decoded)] == decoded, (greedy, decoded)
        with open(os.path.join(folder, "reference.json"), "w") as f:
            json.dump({"prompt_ids": PROMPT, "logits": [[round(x, 6) for x in s] for s in steps],
                       "greedy_ids": greedy, "dtype": str(dtype).replace("torch.", ""),
                       "transformers": __import__("transformers").__version__, "torch": torch.__version__}, f)
        files = sorted(os.listdir(folder))
        print(f"{name}: {arch} {dtype} {total} bytes of weights, files {files}, greedy {greedy[:8]}...")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tiny-models")
