"""How long a chapter's gpu-profile run would take on Colab's T4: a prediction, not a measurement.

No T4 is at hand when the book is built, so the time is predicted from what a run's record says (epochs,
batch size, multiply-adds per image) and from the network's number of layers (kernel launches). The
benchmark ``benchmarks/gpu_check.py`` uses the same model with the rates it measures on the GPU present;
``predict_record`` uses it with a record's own measured time. Neither was checked on a T4.
"""
from __future__ import annotations

import math

import torch
from torch import nn

TRAIN_IMAGES_PER_EPOCH = 55_000  # 60,000 minus the 5,000 validation images
EVAL_IMAGES_PER_EPOCH = 15_000  # validation (5,000) + test (10,000), pessimistically both every epoch

# Method (b): the work of one training image is 3 x its forward multiply-adds (forward, and the backward
# pass's two products: gradients of the inputs and of the weights), at a rate a T4 achieves in practice
# on convolutions in fp16 -- 15 TFLOP/s = 7.5 T multiply-adds/s, under a quarter of its 65 TFLOP/s peak.
# A step can take no less than the host needs to launch it: Colab's two slow vCPUs spend ~10 us per kernel
# launch (3 per layer to train, 1 to evaluate) plus ~3 ms per training step for Python, the optimiser,
# the GradScaler's check and the batch's preparation. A step's time is the larger of the two.
T4_MACS_PER_S = 7.5e12
TRAIN_MAC_FACTOR = 3
T4_HOST_S_PER_KERNEL = 10e-6
T4_HOST_S_PER_STEP = 3e-3
T4_HOST_S_PER_EVAL_BATCH = 1e-3
EVAL_BATCH_SIZE = 1000  # cnnbook.train evaluates in batches of 1,000


HOST_FACTOR = 2.0  # a T4 on Colab is never faster than this GPU; Colab's 2 vCPUs launch kernels ~2x slower


def predict_t4(num_epochs: int, batch_size: int, macs: int, layers: int, train_per_s: float, eval_per_s: float,
               speedup_over_t4: float | None, measured_here: bool = True) -> dict:
    """The predicted time of a chapter's full run on a T4 (method b), and a pessimistic bound (method a).

    chapter time = epochs x (55,000 training images + 15,000 evaluated images at the T4's rates)

    (b) per training step of ``batch_size`` images, the larger of 3 x macs x batch_size / T4_MACS_PER_S (the
        T4's arithmetic) and the step's time measured on this GPU x HOST_FACTOR (a T4 is no faster than this
        GPU, and Colab's host launches kernels about twice as slowly); on a CPU, where nothing was measured on
        a GPU, the launch model T4_HOST_S_PER_STEP + 3 x layers x T4_HOST_S_PER_KERNEL instead;
    (a) the rates measured here divided by ``speedup_over_t4``, the ratio of fp16 tensor-core peaks: a bound
        that holds only if the network were bound by the tensor cores, which small networks are not.
    (b) is the prediction (``seconds``); (a) is shown beside it.
    """
    steps = math.ceil(TRAIN_IMAGES_PER_EPOCH / batch_size)
    eval_batches = math.ceil(EVAL_IMAGES_PER_EPOCH / EVAL_BATCH_SIZE)
    if measured_here and speedup_over_t4:
        host_step = HOST_FACTOR * batch_size / train_per_s
        host_eval = HOST_FACTOR * EVAL_BATCH_SIZE / eval_per_s
    else:
        host_step = T4_HOST_S_PER_STEP + TRAIN_MAC_FACTOR * layers * T4_HOST_S_PER_KERNEL
        host_eval = T4_HOST_S_PER_EVAL_BATCH + layers * T4_HOST_S_PER_KERNEL
    compute_step = TRAIN_MAC_FACTOR * macs * batch_size / T4_MACS_PER_S
    step_s = max(compute_step, host_step)
    eval_batch_s = max(macs * EVAL_BATCH_SIZE / T4_MACS_PER_S, host_eval)
    out = dict(b_s=num_epochs * (steps * step_s + eval_batches * eval_batch_s), b_train_per_s=batch_size / step_s,
               b_bound="compute" if compute_step > host_step else "host", a_s=None, a_train_per_s=None)
    if speedup_over_t4:
        a_train, a_eval = train_per_s / speedup_over_t4, eval_per_s / speedup_over_t4
        out.update(a_s=num_epochs * (TRAIN_IMAGES_PER_EPOCH / a_train + EVAL_IMAGES_PER_EPOCH / a_eval),
                   a_train_per_s=a_train)
    out["method"] = "b"
    out["seconds"] = out["b_s"]
    return out


def leaf_modules(net: nn.Module) -> int:
    """The modules without children: the layers whose kernels the host launches one by one."""
    return sum(1 for m in net.modules() if not list(m.children()))


def predict_record(record) -> float:
    """The predicted seconds of a gpu-profile record's training run on a T4: the larger of the launch model
    (method b without a measured rate: the record's epochs, batch size and multiply-adds per image, and the
    layers of the chapter's network, built on the meta device) and, for a record made on a CUDA GPU,
    HOST_FACTOR x its measured training time (a T4 is no faster than that GPU). A rough estimate: the
    rates are assumptions, never checked on a T4."""
    from .book import build_network

    with torch.device("meta"):
        layers = leaf_modules(build_network(record.chapter, record.profile))
    settings = record.settings or {}
    seconds = predict_t4(record.num_epochs, settings.get("batch_size", 128), record.macs, layers,
                         train_per_s=0.0, eval_per_s=0.0, speedup_over_t4=None, measured_here=False)["seconds"]
    if record.device == "cuda":
        seconds = max(seconds, HOST_FACTOR * record.wall_time_s)
    return seconds
