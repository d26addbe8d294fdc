"""A trained UniAudio 2.0 checkpoint's backbone as a causal LM for MMLU (`lm-ckpt:` systems on the
mmlu task): its text path over the LLM's vocabulary, scored by `mmlu.HFCausalLM` with
lm-eval's log-likelihood rule."""

from __future__ import annotations

import torch

from .tasks.mmlu import HFCausalLM


class BackboneCausalLM(torch.nn.Module):
    """The multi-stream model's text path as a transformers-style causal LM over its LLM's
    vocabulary (rows of text tokens in, `.logits` out): what `benchmark.tasks.mmlu.HFCausalLM`
    scores with lm-eval's log-likelihood rule. At step 0 (experts at identity) it is the LLM."""

    def __init__(self, model):
        super().__init__()
        from types import SimpleNamespace

        if getattr(model, "llm_text", None) is None:
            raise ValueError("MMLU through the backbone needs a multi-stream model with an LLM middle (model.middle)")
        self.m = model
        self.offset, self.size = model.llm_text
        self.config = SimpleNamespace(max_position_embeddings=model.cfg.max_rows, model_type="llama")

    def forward(self, ids: torch.Tensor):
        from types import SimpleNamespace

        rows = (ids + self.offset)[..., None].expand(-1, -1, self.m.cfg.n_streams)
        pos = torch.arange(ids.shape[1], device=ids.device)[None].expand(ids.shape[0], -1)
        return SimpleNamespace(logits=self.m.text_logits(self.m.global_forward(rows, pos))[..., -self.size:])


def backbone_mmlu_model(gen):
    """An HFCausalLM over the checkpoint's backbone and its text tokenizer (the LLM's own)."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(gen.ck["text_tokenizer"]))
    return HFCausalLM(f"{gen.path} (backbone)", device=str(gen.device), objects=(tok, BackboneCausalLM(gen.model)))
