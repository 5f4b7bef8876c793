"""What every training stage shares: resumable state, the lr schedule, the step loop with its progress line."""
import math
import random
import time
from pathlib import Path

import torch

CHECKPOINT_EVERY_S = 300


class Run:
    """Resumable state of one stage: module/optimizer checkpoint in work/<stage>.pt, written atomically."""

    def __init__(self, work, stage):
        self.path = Path(work) / f"{stage}.pt"
        self.stage = stage

    def load(self, modules, optimizer):
        if not self.path.exists():
            return {"step": 0, "seconds": 0.0, "best": None}
        saved = torch.load(self.path, weights_only=False)
        for name, module in modules.items():
            module.load_state_dict(saved["modules"][name])
        optimizer.load_state_dict(saved["optimizer"])
        random.setstate(saved["py_rng"])
        torch.set_rng_state(saved["torch_rng"])
        print(f"{self.stage}: resumed at step {saved['meta']['step']}", flush=True)
        return saved["meta"]

    def save(self, modules, optimizer, meta):
        tmp = self.path.with_suffix(".tmp")
        torch.save({"modules": {n: m.state_dict() for n, m in modules.items()}, "optimizer": optimizer.state_dict(),
                    "py_rng": random.getstate(), "torch_rng": torch.get_rng_state(), "meta": meta}, tmp)
        tmp.replace(self.path)


def cosine_lr(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup)))))


def timed_steps(stage, run, modules, optimizer, meta, steps, batch, peak_lr, make_batch, step_loss, after_step=None, warmup=100,
                log_every=10):
    """The shared loop: lr schedule, step, a progress line (step, samples/s, loss, ETA), a checkpoint every 5 minutes.
    meta["last_val"] (set by after_step) is repeated on the progress line."""
    start = time.time() - meta["seconds"]
    resumed = (meta["step"], meta["seconds"])
    last_save = time.time()
    losses = []
    while meta["step"] < steps:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(meta["step"], steps, peak_lr * group.get("lr_scale", 1.0), warmup=min(warmup, steps // 10))
        loss = step_loss(make_batch())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], 1.0)
        optimizer.step()
        losses.append(loss.item())
        meta["step"] += 1
        meta["seconds"] = time.time() - start
        if meta["step"] % log_every == 0 or meta["step"] == steps:
            rate = (meta["step"] - resumed[0]) * batch / max(1e-9, meta["seconds"] - resumed[1])
            eta = (steps - meta["step"]) * batch / max(rate, 1e-9)
            val = f" | val {meta['last_val']}" if meta.get("last_val") else ""
            print(f"{stage} step {meta['step']}/{steps} {rate:.2f} samples/s loss {sum(losses) / len(losses):.4f} "
                  f"eta {eta / 60:.1f} min{val}", flush=True)
            losses = []
        if after_step:
            after_step(meta)
        if time.time() - last_save > CHECKPOINT_EVERY_S or meta["step"] == steps:
            run.save(modules, optimizer, meta)
            last_save = time.time()
    return meta
