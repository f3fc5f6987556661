"""Train the small U-Net peer on simulator frames and export it to ONNX (``benchmarks/peers/unet_lumen.onnx``).

The peer a user would pick instead of the classical guidance engine: a learned lumen segmenter. It is trained
here, from the simulator only (no data set, no pretrained weights, nothing downloaded), and run at inference
time with onnxruntime alone (:mod:`benchmarks.peers.onnx_peer`) or inside FAST (:mod:`benchmarks.peers.fast_peer`).

Data
    Every scenario of :func:`echosclero.sim.list_scenarios`, training seeds 100..100+N-1 (default N = 30),
    validation seeds 900..900+M-1 (default M = 5); frames sampled at 2 Hz over each scenario's full duration.
    Seeds 5000 and above are the benchmarks' held-out seeds and are never used here (refused).
    Targets: per-pixel lumen labels (background, vein, artery) from the simulator's exact geometry
    (:func:`benchmarks.peers.masks.lumen_labels`).
Model
    ``(1, 1, 512, 512)`` float32 display levels 0..255 in, 2 x 2 average pooling to 256 x 256, a 4-level U-Net
    (8-16-32-64 channels, 128 at the bottom; 3 x 3 convolutions, batch norm, ReLU; bilinear up-sampling),
    bilinear up-sampling of the logits back to 512 x 512 and a softmax: ``(1, 3, 512, 512)`` probabilities
    of background / vein lumen / artery lumen. Fixed input shape (FAST needs one).
Training
    Soft-label cross-entropy plus soft Dice (lumen, and artery lumen at half weight) on the 256 x 256 logits
    against the 2 x 2 area fractions of the labels, on random 128 x 128 crops of the 256 x 256 working images;
    AdamW with a one-cycle learning rate; augmentation: left-right flip, gain (x 0.75..1.3), offset (-25..25
    levels), Gaussian noise (sigma 0..6 levels). A fixed number of epochs, so the result depends only on the
    seed and the number of torch threads, never on the machine's speed. Labels: the most probable class.

Needs PyTorch, which the project's environment does not carry (only onnxruntime is needed at run time).
Recipe (``make train-unet`` does exactly this)::

    python3 -m venv .venv-train
    .venv-train/bin/pip install torch==2.13.0 onnx numpy opencv-python-headless scipy
    PYTHONPATH=src:. nice -n 10 .venv-train/bin/python -m benchmarks.peers.train_unet

It writes ``unet_lumen.onnx`` and its provenance ``unet_lumen.json`` (seeds, scenarios, frames, epochs,
losses, validation Dice, versions, sha256, size) next to this file. The prepared frames are cached under
``out/unet_cache/`` (git-ignored) so that a second run skips the simulation.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
for _p in (ROOT / "src", ROOT):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from benchmarks.peers.masks import ARTERY, VEIN, lumen_labels, network_input  # noqa: E402
from echosclero.sim import list_scenarios, open_simulated_source  # noqa: E402

HERE = Path(__file__).resolve().parent
ONNX_PATH = HERE / "unet_lumen.onnx"
PROVENANCE_PATH = HERE / "unet_lumen.json"
CACHE_DIR = ROOT / "out" / "unet_cache"

#: Seeds reserved for the benchmarks (held-out scenes): never trained or validated on.
HELD_OUT_SEED_MIN = 5000
TRAIN_SEED_START = 100
VAL_SEED_START = 900
SAMPLE_RATE_HZ = 2.0
INPUT_SHAPE = (1, 1, 512, 512)
WIDTHS = (8, 16, 32, 64, 128)
N_CLASSES = 3


# ----------------------------------------------------------------------------------------------------------
# data


def _pool2(a: np.ndarray) -> np.ndarray:
    """Sum over 2 x 2 blocks: (rows, cols) -> (rows / 2, cols / 2), same dtype family (no rounding)."""
    r, c = a.shape
    return a.reshape(r // 2, 2, c // 2, 2).sum(axis=(1, 3), dtype=a.dtype)


def render_set(scenarios: list[str], seeds: list[int], *, sample_rate_hz: float = SAMPLE_RATE_HZ,
               full: bool = False) -> dict[str, np.ndarray]:
    """Simulate frames and their lumen labels.

    Parameters
    ----------
    scenarios, seeds
        Every scenario is rendered with every seed. Seeds >= 5000 are refused (benchmark scenes).
    sample_rate_hz
        Frames per second of simulated time.
    full
        Keep full-resolution grey images and labels (validation) instead of the 2 x 2 block sums (training).

    Returns
    -------
    dict
        ``x``: (N, 256, 256) uint16 sums of 4 grey levels, or (N, 512, 512) uint8 grey when ``full``;
        ``vein``, ``artery``: (N, 256, 256) uint8 counts (0..4) of vein / artery pixels per block, or
        ``labels``: (N, 512, 512) uint8 when ``full``; ``scenario``: (N,) index into ``scenarios``.
    """
    bad = [s for s in seeds if s >= HELD_OUT_SEED_MIN]
    if bad:
        raise ValueError(f"seeds {bad} are held out for the benchmarks (>= {HELD_OUT_SEED_MIN}); train on 100-999")
    xs, veins, arteries, labels, which = [], [], [], [], []
    for k, name in enumerate(scenarios):
        for seed in seeds:
            src = open_simulated_source(name, seed=seed, frame_rate_hz=sample_rate_hz)
            for frame in src.frames():
                lab = lumen_labels(src.scene)
                grey = network_input(frame.pixels)
                if full:
                    xs.append(grey.astype(np.uint8))
                    labels.append(lab)
                else:
                    xs.append(_pool2(grey.astype(np.uint16)))
                    veins.append(_pool2((lab == VEIN).astype(np.uint8)))
                    arteries.append(_pool2((lab == ARTERY).astype(np.uint8)))
                which.append(k)
    out = {"x": np.stack(xs), "scenario": np.asarray(which, np.int16)}
    if full:
        out["labels"] = np.stack(labels)
    else:
        out["vein"], out["artery"] = np.stack(veins), np.stack(arteries)
    return out


def _cache_path(tag: str, scenarios: list[str], seeds: list[int], full: bool) -> Path:
    key = hashlib.sha256(json.dumps([scenarios, seeds, SAMPLE_RATE_HZ, full]).encode()).hexdigest()[:16]
    return CACHE_DIR / f"{tag}-{key}.npz"


def cached_set(tag: str, scenarios: list[str], seeds: list[int], *, full: bool = False) -> dict[str, np.ndarray]:
    """:func:`render_set` through an on-disk cache keyed by scenarios, seeds and options."""
    path = _cache_path(tag, scenarios, seeds, full)
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    data = render_set(scenarios, seeds, full=full)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return data


# ----------------------------------------------------------------------------------------------------------
# model (torch is imported lazily: the data helpers above need only numpy)


def build_model():
    """The U-Net working at 256 x 256 (logits out) and the 512 x 512 export wrapper (probabilities out)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self, widths=WIDTHS, n_classes: int = N_CLASSES) -> None:
            super().__init__()
            self.down = nn.ModuleList()
            c = 1
            for w in widths:
                self.down.append(block(c, w))
                c = w
            self.up = nn.ModuleList(block(widths[i + 1] + widths[i], widths[i])
                                    for i in reversed(range(len(widths) - 1)))
            self.head = nn.Conv2d(widths[0], n_classes, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 1, 256, 256) in 0..1
            skips = []
            for i, d in enumerate(self.down):
                x = d(x if i == 0 else F.max_pool2d(x, 2))
                skips.append(x)
            x = skips.pop()
            for u in self.up:
                x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
                x = u(torch.cat([x, skips.pop()], dim=1))
            return self.head(x)

    class Export(nn.Module):
        """(1, 1, 512, 512) display levels 0..255 -> (1, 3, 512, 512) class probabilities."""

        def __init__(self, net: UNet) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.avg_pool2d(x * (1.0 / 255.0), 2)
            logits = F.interpolate(self.net(x), scale_factor=2.0, mode="bilinear", align_corners=False)
            return torch.softmax(logits, dim=1)

    return UNet, Export


def _batch(data: dict, idx: np.ndarray, rng: np.random.Generator, *, crop_px: int, augment: bool):
    """Input (B, 1, crop, crop) in 0..1 and soft targets (B, 3, crop, crop) for samples ``idx``.

    Each sample is a random ``crop_px`` square of its 256 x 256 working image (the network is fully
    convolutional: it is trained on crops and run on the whole image)."""
    import torch

    b = len(idx)
    size = data["x"].shape[1]
    r0 = rng.integers(0, size - crop_px + 1, b)
    c0 = rng.integers(0, size - crop_px + 1, b)
    win = [(i, slice(r, r + crop_px), slice(c, c + crop_px)) for i, r, c in zip(idx, r0, c0, strict=True)]
    x = np.stack([data["x"][w] for w in win]).astype(np.float32) * np.float32(0.25)
    vein = np.stack([data["vein"][w] for w in win]).astype(np.float32) * np.float32(0.25)
    art = np.stack([data["artery"][w] for w in win]).astype(np.float32) * np.float32(0.25)
    if augment:
        flip = rng.random(b) < 0.5
        x[flip], vein[flip], art[flip] = x[flip, :, ::-1], vein[flip, :, ::-1], art[flip, :, ::-1]
        gain = rng.uniform(0.75, 1.3, b).astype(np.float32)[:, None, None]
        offset = rng.uniform(-25.0, 25.0, b).astype(np.float32)[:, None, None]
        sigma = rng.uniform(0.0, 6.0, b).astype(np.float32)[:, None, None]
        x = x * gain + offset + sigma * rng.standard_normal(x.shape, dtype=np.float32)
        np.clip(x, 0.0, 255.0, out=x)
    target = np.stack([1.0 - vein - art, vein, art], axis=1)
    return (torch.from_numpy(np.ascontiguousarray(x[:, None] / np.float32(255.0))),
            torch.from_numpy(np.ascontiguousarray(target)))


def _soft_dice(p, t):
    inter = (p * t).sum()
    return (2 * inter + 1.0) / (p.sum() + t.sum() + 1.0)


def _loss(logits, target):
    """Soft-label cross-entropy + (1 - Dice of the lumen, any vessel) + 0.5 (1 - Dice of the artery lumen)."""
    import torch

    ce = -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    p = torch.softmax(logits, dim=1)
    lumen = 1.0 - _soft_dice(1.0 - p[:, 0], 1.0 - target[:, 0])
    artery = 1.0 - _soft_dice(p[:, 2], target[:, 2])
    return ce + lumen + 0.5 * artery


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice coefficient of two boolean masks (1.0 when both are empty)."""
    s = int(pred.sum()) + int(truth.sum())
    return 1.0 if s == 0 else 2.0 * int(np.count_nonzero(pred & truth)) / s


def validate(session_run, val: dict) -> dict:
    """Lumen Dice (any vessel) and per-class Dice of the exported model over full-size validation frames.

    ``session_run(grey (512, 512) float32) -> labels (512, 512)``. Dice is pooled over all frames (sums of
    intersections and areas), plus the median of the per-frame lumen Dice.
    """
    inter = {"lumen": 0, "vein": 0, "artery": 0}
    total = {"lumen": 0, "vein": 0, "artery": 0}
    per_frame = []
    for grey, lab in zip(val["x"], val["labels"], strict=True):
        pred = session_run(grey.astype(np.float32))
        for name, p, t in (("lumen", pred > 0, lab > 0), ("vein", pred == VEIN, lab == VEIN),
                           ("artery", pred == ARTERY, lab == ARTERY)):
            inter[name] += int(np.count_nonzero(p & t))
            total[name] += int(p.sum()) + int(t.sum())
        per_frame.append(dice(pred > 0, lab > 0))
    out = {f"{k}_dice": round(2 * inter[k] / max(1, total[k]), 4) for k in inter}
    out["lumen_dice_median_per_frame"] = round(float(np.median(per_frame)), 4)
    out["frames"] = len(per_frame)
    return out


# ----------------------------------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> dict:
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    scenarios = [n for n, _ in list_scenarios()]
    train_seeds = list(range(TRAIN_SEED_START, TRAIN_SEED_START + args.train_seeds))
    val_seeds = list(range(VAL_SEED_START, VAL_SEED_START + args.val_seeds))
    if train_seeds[-1] >= VAL_SEED_START:
        raise SystemExit(f"--train-seeds {args.train_seeds} would reach the validation seeds ({VAL_SEED_START}+)")
    t0 = time.perf_counter()
    from_cache = all(_cache_path(tag, scenarios, seeds, full).exists()
                     for tag, seeds, full in (("train", train_seeds, False), ("val", val_seeds, True)))
    data = cached_set("train", scenarios, train_seeds)
    val = cached_set("val", scenarios, val_seeds, full=True)
    t_data = time.perf_counter() - t0
    n = len(data["x"])
    print(f"data: {n} training frames, {len(val['x'])} validation frames, {t_data:.0f} s", flush=True)

    UNet, Export = build_model()
    net = UNet()
    n_params = sum(p.numel() for p in net.parameters())
    steps_per_epoch = n // args.batch
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)
    history = []
    t1 = time.perf_counter()
    for epoch in range(args.epochs):
        net.train()
        order = rng.permutation(n)
        losses = []
        for s in range(steps_per_epoch):
            x, target = _batch(data, order[s * args.batch:(s + 1) * args.batch], rng, crop_px=args.crop,
                               augment=True)
            loss = _loss(net(x), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if (s + 1) % 50 == 0:
                print(f"  step {s + 1}/{steps_per_epoch}: loss {np.mean(losses[-50:]):.4f} "
                      f"({time.perf_counter() - t1:.0f} s)", flush=True)
        history.append(round(float(np.mean(losses)), 5))
        print(f"epoch {epoch + 1}/{args.epochs}: loss {history[-1]:.4f} ({time.perf_counter() - t1:.0f} s)",
              flush=True)
    t_train = time.perf_counter() - t1

    net.eval()
    model = Export(net).eval()
    example = torch.zeros(INPUT_SHAPE, dtype=torch.float32)
    torch.onnx.export(model, (example,), str(args.out), dynamo=False, opset_version=17, input_names=["image"],
                      output_names=["probabilities"], do_constant_folding=True)
    import onnx

    onnx.checker.check_model(onnx.load(str(args.out)))

    from benchmarks.peers.onnx_peer import labels_from_probabilities

    def run_torch(grey: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            p = model(torch.from_numpy(grey)[None, None])
        return labels_from_probabilities(p[0].numpy())

    metrics = validate(run_torch, val)
    print(f"validation: {metrics}", flush=True)
    blob = args.out.read_bytes()
    prov = {
        "model": args.out.name,
        "task": "per-pixel lumen segmentation of B-mode / colour Doppler frames: 0 background, 1 vein, 2 artery",
        "input": {"name": "image", "shape": list(INPUT_SHAPE), "dtype": "float32",
                  "meaning": "grey display levels 0..255 (RGB frames: min(red, blue)), no rescaling"},
        "output": {"name": "probabilities", "shape": [1, N_CLASSES, 512, 512], "dtype": "float32",
                   "classes": ["background", "vein", "artery"]},
        "architecture": {"kind": "U-Net", "working_size_px": 256, "widths": list(WIDTHS),
                         "parameters": n_params},
        "training": {
            "script": "benchmarks/peers/train_unet.py", "seed": args.seed, "torch_threads": args.threads,
            "scenarios": scenarios, "train_seeds": [train_seeds[0], train_seeds[-1]],
            "sample_rate_hz": SAMPLE_RATE_HZ, "train_frames": n, "epochs": args.epochs, "batch": args.batch,
            "crop_px_of_256": args.crop, "max_lr": args.lr, "loss_per_epoch": history, "final_loss": history[-1],
            "augmentation": "lr flip, gain x0.75-1.3, offset -25..25, Gaussian noise sigma 0-6 (levels)",
            "held_out_seeds_never_used": f">= {HELD_OUT_SEED_MIN}",
            "data_s": round(t_data, 1), "data_from_cache": from_cache, "train_s": round(t_train, 1),
        },
        "validation": {"seeds": [val_seeds[0], val_seeds[-1]], "scenarios": "all", **metrics},
        "environment": {"torch": torch.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                        "python": platform.python_version(), "platform": platform.platform(),
                        "cpus": os.cpu_count(), "opset": 17},
        "date": _dt.date.today().isoformat(),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "size_bytes": len(blob),
    }
    args.provenance.write_text(json.dumps(prov, indent=2) + "\n")
    print(f"wrote {args.out} ({len(blob) / 1e6:.2f} MB, {n_params} parameters) and {args.provenance}")
    return prov


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train-seeds", type=int, default=30, help="number of training seeds from 100 (default 30)")
    ap.add_argument("--val-seeds", type=int, default=5, help="number of validation seeds from 900 (default 5)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--crop", type=int, default=128, help="training crop of the 256 x 256 working image (px)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the result depends on it)")
    ap.add_argument("--out", type=Path, default=ONNX_PATH)
    ap.add_argument("--provenance", type=Path, default=PROVENANCE_PATH)
    args = ap.parse_args(argv)
    train(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
