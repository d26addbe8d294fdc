"""Model FLOPs counted from the structure of a step, and MFU against a device's peak.

Each Linear costs 2 x its weights per row it processes (forward; backward is 2x that, so a
training step is 3x; a frozen weight, e.g. an LLM middle under LoRA, needs no weight gradient:
2x). The global transformer processes every real row; the local transformer processes K
slots of every *predicted* row (it runs K times per frame, which is why 6 x all parameters x
rows undercounts a multi-scale model); slot heads run on predicted rows. In the multi-stream
model the local decoder and codebook heads run on audio targets only, the text head on every
predicted row. Causal attention is counted on real sequence lengths: 4 x d x L(L+1)/2 per layer and
sequence (QK^T and AV). Padding is excluded. Embedding lookups cost nothing.

`dense=True` counts what the kernels execute instead (every row of the padded batch; each
sequence's full L x L attention, as an unfused kernel would): what torch's FlopCounterMode
sees, and what the tests check against.
MFU = useful FLOPs per second / the device's peak; on a device missing from the table there is
no MFU (None), never a guess."""

from __future__ import annotations

import torch

from .kernels import padded_width

# dense bf16 tensor-core peaks (FLOP/s) from the vendors' data sheets (no sparsity)
PEAK_FLOPS = {
    "H100": 989e12,  # SXM; nanochat and llm.c use the same figure
    "H200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "RTX 4090": 165e12,
}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None  # CPUs: no trustworthy peak table, so no MFU
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


def _linear_params(modules, train: bool) -> float:
    """Weights of every Linear (LoRA adapters included: x A^T B^T is two more products per
    row), each weighed by its passes: forward 1; a training step adds 2 when the weight learns
    (input and weight gradients) and 1 when it is frozen (input gradient only)."""
    n = 0.0
    for module in modules:
        for m in module.modules():
            if isinstance(m, torch.nn.Linear):
                n += m.weight.numel() * ((3 if m.weight.requires_grad else 2) if train else 1)
            elif hasattr(m, "merged"):  # LoRALinear: its adapters always learn
                n += (m.a.numel() + m.b.numel()) * (3 if train else 1)
    return n


def step_flops(model, doc: torch.Tensor, n_predicted: int, *, dense: bool = False, train: bool = True,
               attention: bool = True, global_attention: bool = True, n_audio: int | None = None) -> float:
    """FLOPs of one forward (with `train`, + its backward) of `model` on a batch whose sequence numbers are
    `doc` [B, T] (-1 = padding), with `n_predicted` rows going through the local transformer.
    `attention=False` leaves out the attention matmuls, `global_attention=False` those of the
    global transformer only (FlopCounterMode does not count the CPU SDPA kernel that the global
    transformer uses; the local one's matmuls are written out, and counted)."""
    cfg = model.cfg
    d, k = cfg.d_model, cfg.n_streams
    multistream = getattr(model, "layout", "") == "multistream"
    layers = [*model.bottom, *model.blocks, *model.top] if multistream else list(model.blocks)
    glob = _linear_params(layers, train)
    local = _linear_params(model.local_blocks, train)
    if multistream:  # the text head on every predicted row; local decoder and codebook heads on audio targets
        n_local = n_predicted if n_audio is None else n_audio
        text_head = _linear_params([model.text_head] + ([model.llm_head] if model.llm_text else []), train)
        heads = _linear_params(model.heads, train)
    else:  # tied or not, a slot head is a d x |ids it may hold| product, on every predicted row
        n_local, text_head, heads = n_predicted, 0, _linear_params(model.heads, train)
    if dense:  # the kernels run the slot / codebook heads padded to a multiple of 64 wide (`head_loss`)
        heads = sum(_linear_params([h], train) / h.out_features * padded_width(h.out_features) for h in model.heads)
    b, t = doc.shape
    lengths = []
    for row in doc:
        _, counts = torch.unique_consecutive(row[row >= 0], return_counts=True)
        lengths += counts.tolist()
    if dense:
        rows = b * t
        pairs = sum(n * n for n in lengths)  # each sequence's full score matrix
        local_pairs = n_local * k * k
    else:
        rows = int((doc >= 0).sum())
        pairs = sum(n * (n + 1) // 2 for n in lengths)  # causal, real lengths
        local_pairs = n_local * k * (k + 1) // 2
    passes = 3 if train else 1  # attention's products: both operands need gradients
    att = passes if attention else 0
    gatt = passes if attention and global_attention else 0
    total = (2 * glob * rows + gatt * 4 * d * pairs * len(layers)
             + 2 * _linear_params([model.g2l], train) * n_local
             + 2 * local * n_local * k + att * 4 * d * local_pairs * cfg.local_layers
             + 2 * heads * n_local + 2 * text_head * n_predicted)
    return float(total)
