"""Model FLOPs counted from the structure of a step, and MFU against a device's peak.

Each Linear costs 2 x its weights per row it processes (forward; backward is 2x that, so a
training step is 3x). The global transformer processes every real row; the local
transformer processes K slots of every *predicted* row (it runs K times per frame, which is
why 6 x all parameters x rows undercounts a multi-scale model); slot heads run on predicted
rows. Causal attention is counted on real sequence lengths: 4 x d x L(L+1)/2 per layer and
sequence (QK^T and AV). Padding is excluded. Embedding lookups cost nothing.

`dense=True` counts what the kernels execute instead (every row of the padded batch; each
sequence's full L x L attention, as an unfused kernel would): what torch's FlopCounterMode
sees, and what the tests check against.
MFU = useful FLOPs per second / the device's peak; on a device missing from the table there is
no MFU (None), never a guess."""

from __future__ import annotations

import torch

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


def _linear_params(module: torch.nn.Module) -> int:
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))


def step_flops(model, doc: torch.Tensor, n_predicted: int, *, dense: bool = False, train: bool = True,
               attention: bool = True) -> float:
    """FLOPs of one forward (x3 with `train`) of `model` on a batch whose sequence numbers are
    `doc` [B, T] (-1 = padding), with `n_predicted` rows going through the local transformer.
    `attention=False` leaves out the attention matmuls (FlopCounterMode does not count the CPU
    attention kernel, so the tests compare the rest)."""
    cfg = model.cfg
    d, k = cfg.d_model, cfg.n_streams
    glob = sum(_linear_params(b) for b in model.blocks)
    local = sum(_linear_params(b) for b in model.local_blocks)
    heads = d * sum(model.head_sizes)  # tied or not, a slot head is a d x |ids it may hold| product
    b, t = doc.shape
    lengths = []
    for row in doc:
        _, counts = torch.unique_consecutive(row[row >= 0], return_counts=True)
        lengths += counts.tolist()
    if dense:
        rows = b * t
        pairs = sum(n * n for n in lengths)  # each sequence's full score matrix
        local_pairs = n_predicted * k * k
    else:
        rows = int((doc >= 0).sum())
        pairs = sum(n * (n + 1) // 2 for n in lengths)  # causal, real lengths
        local_pairs = n_predicted * k * (k + 1) // 2
    att = 1 if attention else 0
    fwd = (2 * glob * rows + att * 4 * d * pairs * cfg.n_layers
           + 2 * model.g2l.weight.numel() * n_predicted
           + 2 * local * n_predicted * k + att * 4 * d * local_pairs * cfg.local_layers
           + 2 * heads * n_predicted)
    return float(fwd * (3 if train else 1))
