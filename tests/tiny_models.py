"""Tiny random-weight checkpoints built offline in a fraction of a second, for fast tests.

A byte-level BPE tokenizer (512 tokens) trained on HumanEval's prompts, a ChatML chat template,
and a 2-layer Llama with hidden size 32. Same seed, same weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(texts: list[str], chat: bool) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>" if not chat else "<|im_end|>",
                                  pad_token="<|endoftext|>", bos_token=None)
    if chat:
        fast.chat_template = CHATML
    return fast


def build(folder: Path, texts: list[str], chat: bool = False, seed: int = 0, layers: int = 2,
          steps: int = 0) -> Path:
    """Save a tiny causal LM checkpoint into ``folder`` and return it. Its text is noise over the
    tokenizer's vocabulary; ``steps`` of training on ``texts`` make it code-shaped (slow: ~20 s
    for 60 steps on two idle cores)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(texts, chat)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=None, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # sharper logits: greedy choices are not decided by rounding noise
        model.lm_head.weight.mul_(50)
    if steps:
        _train(model, tokenizer, texts, steps)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def add_lora(base: Path, folder: Path) -> Path:
    """A LoRA adapter on ``base`` with non-zero weights (so it changes the outputs)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"],
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.mul_(10)
    peft_model.save_pretrained(folder)
    return folder


def _train(model: Any, tokenizer: Any, texts: list[str], steps: int) -> None:
    import torch

    eos = tokenizer.eos_token
    ids = [tokenizer(t + eos)["input_ids"][:128] for t in texts]
    optim = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(steps):
        batch = [ids[(step * 16 + j) % len(ids)] for j in range(16)]
        width = max(map(len, batch))
        x = torch.tensor([b + [tokenizer.pad_token_id] * (width - len(b)) for b in batch])
        labels = torch.tensor([b + [-100] * (width - len(b)) for b in batch])
        loss = model(input_ids=x, labels=labels).loss
        loss.backward()
        optim.step()
        optim.zero_grad()
    model.eval()
