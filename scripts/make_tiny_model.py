#!/usr/bin/env python3
"""Build a tiny random-weight Qwen2 chat model that vLLM can serve, with no download.

Usage (inside the .venv-vllm interpreter, which has torch/transformers/tokenizers):
    .venv-vllm/bin/python scripts/make_tiny_model.py DIR

Writes config.json, model.safetensors, tokenizer.json, tokenizer_config.json (with a ChatML
chat template) and generation_config.json into DIR (~1-2 MB). Deterministic (fixed seed).
Skips the work when DIR already holds a complete model. Its output text is noise: it exists
to test plumbing (OpenAI API, streaming, JSON schema), never content.
"""
import json
import os
import shutil
import sys
import tempfile

SEED = 1234
VOCAB_SIZE = 1536  # byte-level BPE target; the real size is padded to a multiple of 64 below
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
REQUIRED_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
DONE_MARKER = ".tiny-model-complete"

# ChatML, as used by Qwen2 chat models.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Small built-in training text (Chinese + English, interview flavoured).
TEXT = """\
Tell me about yourself. I am a software engineer with five years of experience in Python.
What is your greatest strength? My greatest strength is solving problems under pressure.
Describe a time you handled a conflict in your team. We listened, compared data and agreed.
Why do you want to work here? I admire the product, the team and the engineering culture.
What is a hash map? A hash map stores key value pairs with average constant time lookup.
Explain the difference between a process and a thread. Threads share memory; processes do not.
How would you design a URL shortener? Use a unique id, base62 encoding, a cache and a database.
STAR method: Situation, Task, Action, Result. Give concrete numbers and outcomes.
{"answer": "yes", "score": 4, "feedback": "clear and concise"} [1, 2, 3] (a + b) * c = 42;
请介绍一下你自己。我是一名软件工程师，有五年的 Python 开发经验。
你最大的优点是什么？我最大的优点是在压力下解决问题的能力。
请描述一次你处理团队冲突的经历。我们先倾听，再比较数据，最后达成一致。
你为什么想来我们公司工作？我欣赏这里的产品、团队和工程文化。
什么是哈希表？哈希表以键值对的形式存储数据，平均查找时间为常数。
进程和线程有什么区别？线程共享内存，而进程之间不共享。
如何设计一个短链接服务？使用唯一编号、六十二进制编码、缓存和数据库。
面试技巧：使用 STAR 方法，即情境、任务、行动和结果，并给出具体的数字。
谢谢你的回答。你还有什么问题想问我们吗？请问团队的工作方式是怎样的？
"""


def is_complete(out_dir: str) -> bool:
    return os.path.isfile(os.path.join(out_dir, DONE_MARKER)) and all(
        os.path.isfile(os.path.join(out_dir, f)) for f in REQUIRED_FILES
    )


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())  # no unk token: byte-level covers any Unicode
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes
        show_progress=False,
    )
    # Repeat the text a little so merges have counts; training is deterministic.
    tok.train_from_iterator(TEXT.splitlines() * 4, trainer=trainer)
    return tok


def build(out_dir: str) -> None:
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(SEED)
    raw = build_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
        model_max_length=4096,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    eos_id = raw.token_to_id("<|im_end|>")
    pad_id = raw.token_to_id("<|endoftext|>")
    vocab = ((raw.get_vocab_size() + 63) // 64) * 64  # embedding rows >= tokenizer size
    config = Qwen2Config(
        vocab_size=vocab,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        use_sliding_window=False,
    )
    model = Qwen2ForCausalLM(config).to(torch.bfloat16).eval()

    # Write into a temp dir beside the target, then move into place (no half-built model).
    parent = os.path.dirname(os.path.abspath(out_dir)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tiny-model-", dir=parent)
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        # Make sure the chat template is in tokenizer_config.json (older vLLM reads it there).
        cfg_path = os.path.join(tmp, "tokenizer_config.json")
        with open(cfg_path, encoding="utf-8") as f:
            tcfg = json.load(f)
        tcfg["chat_template"] = CHAT_TEMPLATE
        with open(cfg_path, "w", encoding="utf-8") as f:
            json.dump(tcfg, f, ensure_ascii=False, indent=2)
        open(os.path.join(tmp, DONE_MARKER), "w").close()
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    n_params = sum(p.numel() for p in model.parameters())
    print(f"[make_tiny_model] wrote {out_dir}: vocab {vocab}, {n_params} params", file=sys.stderr)


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} DIR", file=sys.stderr)
        return 2
    out_dir = sys.argv[1]
    if is_complete(out_dir):
        print(f"[make_tiny_model] {out_dir} already complete, skipping", file=sys.stderr)
        return 0
    build(out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
