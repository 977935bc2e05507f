"""``tiny``: a small randomly initialised Llama and a byte-level BPE tokenizer, for tests.

The tokenizer is trained (in milliseconds, deterministically) on the built-in benchmark's
text, so the benchmark's facts are a few tokens each and a model of a few hundred
thousand parameters learns them in seconds on a CPU. Byte-level BPE still encodes any
text. It has no chat template, so the plain ``Question: … Answer: …`` format is used.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

TINY_SEED = 0
TINY_VOCAB = 1024


def _corpus() -> list[str]:
    from obliviate.data.bench import generate_benchmark

    lines: list[str] = ["Question:", "Answer:"]
    for records in generate_benchmark(seed=TINY_SEED).values():
        for record in records:
            lines.extend(t for t in (record.prompt, record.answer, record.text) if t)
            lines.extend(record.paraphrases)
            lines.extend(record.perturbed)
    return lines


@lru_cache(maxsize=1)
def _tokenizer_json() -> str:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB,
        special_tokens=["<pad>", "<eos>", "<bos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    return tokenizer.to_str()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh copy of the tiny byte-level BPE tokenizer (trained once per process)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(_tokenizer_json()),
        eos_token="<eos>",
        pad_token="<pad>",
        bos_token="<bos>",
    )


def tiny_model() -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """A 2-layer, 64-wide Llama with tied embeddings, initialised from a fixed seed."""
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=192,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(TINY_SEED)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def tiny_fingerprint() -> str:
    """Changes whenever the tiny tokenizer (and so the tiny model) would."""
    import hashlib

    return hashlib.sha256(_tokenizer_json().encode()).hexdigest()
