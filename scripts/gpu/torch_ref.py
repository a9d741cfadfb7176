#!/usr/bin/env python3
"""PyTorch reference for ee-backend (run by scripts/gpu/validate.sh; needs torch, torchvision,
transformers, safetensors, numpy; no network).

Subcommands:

  make     random-init reference model (seeded), its weights as safetensors (torchvision /
           Hugging Face names), a fixed input as safetensors and PyTorch's logits as JSON.
  profile  per-batch-size timing in ee-backend's profile record schema ("ee-backend-profile/1",
           source "pytorch"): CUDA events at every ramp site (forward hooks), the ramp head alone
           on each site's activation, the whole model between two events; median/p5/p95 (numpy's
           linear percentiles). The file is rewritten after every batch size, so a run cut short
           still leaves what it measured. `ee-backend profile --from-json FILE --out DIR` turns
           it into profile pickles (the fallback when our GPU timing is far from PyTorch's).
  compare  max |logit delta| between two logits JSON files.
  report   one JSON (validate.json) from whatever the steps left in a folder: parity, V[bs] ours
           vs PyTorch with ratios, per-site shares, ramp cost shares, p95/median, time to first
           result, and each step's status.

Models: resnet50 (torchvision, 16 sites: after every bottleneck block `layer{i}.{j}`, 1000
classes) and bert-base (transformers BertForSequenceClassification, 12 sites: after every
encoder layer, 2 labels, DeeBERT highway ramps: pooler dense+tanh on token 0, then linear).
"""

import argparse
import json
import os
import sys
import time

RECORD_FORMAT = "ee-backend-profile/1"
MODELS = ("resnet50", "bert-base")


def log(*args):
    print("[torch_ref]", *args, file=sys.stderr, flush=True)


def write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# Models, sites and ramps


def build_model(name, seed):
    import torch

    torch.manual_seed(seed)
    if name == "resnet50":
        import torchvision

        model = torchvision.models.resnet50(weights=None, num_classes=1000)
        # Random-init batch-norm statistics are 0 / 1: make them non-trivial so parity tests them.
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.1, 0.1)
    elif name == "bert-base":
        from transformers import BertConfig, BertForSequenceClassification

        config = BertConfig(num_labels=2)
        model = BertForSequenceClassification(config)
    else:
        raise SystemExit(f"unknown model {name!r} (known: {', '.join(MODELS)})")
    return model.eval()


def site_modules(name, model):
    """The modules after which a ramp attaches, in order (the artifact's sites)."""
    if name == "resnet50":
        return [block for layer in (model.layer1, model.layer2, model.layer3, model.layer4)
                for block in layer]
    return list(model.bert.encoder.layer)


def ramp_heads(name, model, device):
    """One randomly initialised ramp head per site (CV: GAP + linear; NLP: DeeBERT highway)."""
    import torch

    heads = []
    if name == "resnet50":
        for block in site_modules(name, model):
            width = block.conv3.out_channels
            heads.append(torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                             torch.nn.Linear(width, 1000)))
    else:
        hidden = model.config.hidden_size
        labels = model.config.num_labels

        class Highway(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.dense = torch.nn.Linear(hidden, hidden)
                self.classifier = torch.nn.Linear(hidden, labels)

            def forward(self, h):
                return self.classifier(torch.tanh(self.dense(h[:, 0])))

        heads = [Highway() for _ in site_modules(name, model)]
    return [h.to(device).eval() for h in heads]


def example_input(name, batch, seq_len, device, seed=1):
    import torch

    g = torch.Generator().manual_seed(seed)
    if name == "resnet50":
        return {"input": torch.randn(batch, 3, 224, 224, generator=g).to(device)}
    ids = torch.randint(1000, 30000, (batch, seq_len), generator=g)
    ids[:, 0] = 101  # [CLS]
    mask = torch.ones(batch, seq_len, dtype=torch.int64)
    if batch > 1:  # pad the tail of the last sample
        pad = seq_len // 4
        ids[-1, seq_len - pad:] = 0
        mask[-1, seq_len - pad:] = 0
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def run_model(name, model, inputs):
    if name == "resnet50":
        return model(inputs["input"])
    return model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits


def versions():
    out = {}
    for mod in ("torch", "torchvision", "transformers", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing package is recorded, not fatal
            out[mod] = None
    return out


# ----------------------------------------------------------------------------------------------
# make


def cmd_make(args):
    import torch
    from safetensors.torch import save_file

    device = pick_device(args.device)
    model = build_model(args.model, args.seed)
    os.makedirs(args.out, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    weights = os.path.join(args.out, f"{args.model}.safetensors")
    save_file(state, weights)
    inputs = example_input(args.model, args.batch, args.seq_len, "cpu")
    input_path = os.path.join(args.out, f"{args.model}_input.safetensors")
    save_file({k: v.contiguous() for k, v in inputs.items()}, input_path)
    model = model.to(device)
    with torch.no_grad():
        t0 = time.perf_counter()
        logits = run_model(args.model, model, {k: v.to(device) for k, v in inputs.items()})
        if device.type == "cuda":
            torch.cuda.synchronize()
        first_ms = (time.perf_counter() - t0) * 1e3
    out = {
        "model": args.model,
        "device": str(device),
        "first_forward_ms": first_ms,
        "versions": versions(),
        "logits": logits.float().cpu().tolist(),
    }
    write_json(os.path.join(args.out, f"{args.model}_torch_logits.json"), out)
    log(f"wrote {weights}, {input_path} and PyTorch's logits ({tuple(logits.shape)})")


# ----------------------------------------------------------------------------------------------
# profile


def pick_device(choice):
    import torch

    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch.cuda.is_available() is False")
        return torch.device("cuda", 0)
    return torch.device("cpu")


class Clock:
    """CUDA events on a GPU, perf_counter (after a synchronize) on the CPU."""

    def __init__(self, device):
        import torch

        self.torch = torch
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            e = self.torch.cuda.Event(enable_timing=True)
            e.record()
            return e
        return time.perf_counter()

    def ms(self, a, b):
        if self.cuda:
            return a.elapsed_time(b)
        return (b - a) * 1e3

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()


def stats(samples):
    import numpy as np

    a = np.asarray(samples, dtype=np.float64)
    return {"median": float(np.percentile(a, 50)), "p5": float(np.percentile(a, 5)),
            "p95": float(np.percentile(a, 95))}


def cmd_profile(args):
    import torch

    device = pick_device(args.device)
    deadline = time.time() + args.budget_s if args.budget_s else None
    model = build_model(args.model, args.seed).to(device)
    sites = site_modules(args.model, model)
    heads = ramp_heads(args.model, model, device)
    clock = Clock(device)
    tf32 = None
    if device.type == "cuda":
        tf32 = (f"matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32} "
                f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} "
                f"cudnn.benchmark={torch.backends.cudnn.benchmark}")
    dev = {"selected": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        dev.update({"name": props.name, "memory_bytes": props.total_memory,
                    "capability": f"{props.major}.{props.minor}",
                    "cuda_runtime": torch.version.cuda})
    record = {
        "format": RECORD_FORMAT, "source": "pytorch", "model": args.model,
        "num_sites": len(sites), "device": dev, "versions": versions(), "tf32": tf32,
        "warmup": args.warmup, "reps": args.reps,
        "seq_len": args.seq_len if args.model != "resnet50" else None,
        "batches": [],
    }
    marks = []
    acts = []

    def hook(_module, _inputs, output):
        marks.append(clock.mark())
        acts.append(output[0] if isinstance(output, tuple) else output)

    handles = [s.register_forward_hook(hook) for s in sites]

    def staged(inputs):
        """One forward with a mark at every site; returns (segment ms, ramp ms)."""
        marks.clear()
        acts.clear()
        start = clock.mark()
        run_model(args.model, model, inputs)
        end = clock.mark()
        all_marks = [start] + list(marks) + [end]
        site_acts = list(acts)
        ramp_marks = []
        for head, act in zip(heads, site_acts):
            a = clock.mark()
            head(act)
            ramp_marks.append((a, clock.mark()))
        clock.sync()
        segs = [clock.ms(all_marks[i], all_marks[i + 1]) for i in range(len(all_marks) - 1)]
        ramps = [clock.ms(a, b) for a, b in ramp_marks]
        return segs, ramps

    def vanilla(inputs):
        for h in handles:
            h.remove()
        handles.clear()
        clock.sync()
        a = clock.mark()
        run_model(args.model, model, inputs)
        b = clock.mark()
        clock.sync()
        handles.extend(s.register_forward_hook(hook) for s in sites)
        return clock.ms(a, b)

    with torch.no_grad():
        for bs in args.batch_sizes:
            if deadline and time.time() > deadline:
                log(f"budget spent: stopping before batch size {bs}")
                break
            inputs = example_input(args.model, bs, args.seq_len, device)
            clock.sync()
            t0 = time.perf_counter()
            run_model(args.model, model, inputs)
            clock.sync()
            first = (time.perf_counter() - t0) * 1e3
            for _ in range(args.warmup):
                if deadline and time.time() > deadline:
                    break
                staged(inputs)
                vanilla(inputs)
            seg_samples = [[] for _ in range(len(sites) + 1)]
            ramp_samples = [[] for _ in sites]
            whole = []
            for rep in range(args.reps):
                if deadline and time.time() > deadline and rep >= 3:
                    log(f"budget spent: batch size {bs} keeps {rep} timed runs")
                    break
                segs, ramps = staged(inputs)
                if len(segs) != len(sites) + 1:
                    raise SystemExit(f"{len(segs) - 1} site marks for {len(sites)} sites")
                for i, v in enumerate(segs):
                    seg_samples[i].append(v)
                for i, v in enumerate(ramps):
                    ramp_samples[i].append(v)
                whole.append(vanilla(inputs))
            record["batches"].append({
                "batch_size": bs,
                "vanilla_ms": stats(whole),
                "segments_ms": [stats(s) for s in seg_samples],
                "ramps_ms": [stats(s) for s in ramp_samples],
                "first_forward_ms": first,
                "reps_done": len(whole),
            })
            write_json(args.out, record)
            log(f"{args.model} bs {bs}: V median {stats(whole)['median']:.3f} ms")
    write_json(args.out, record)


# ----------------------------------------------------------------------------------------------
# compare and report


def max_delta(ours, ref):
    a = [x for row in ours["logits"] for x in row]
    b = [x for row in ref["logits"] for x in row]
    if len(a) != len(b) or len(ours["logits"]) != len(ref["logits"]):
        return None
    return max(abs(x - y) for x, y in zip(a, b))


def cmd_compare(args):
    with open(args.ours) as f:
        ours = json.load(f)
    with open(args.ref) as f:
        ref = json.load(f)
    d = max_delta(ours, ref)
    ok = d is not None and d < args.tol
    print(json.dumps({"max_abs_delta": d, "tolerance": args.tol, "ok": ok}))
    return 0 if ok else 1


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def table(batch):
    """The rescaled table of one batch record (as ee-backend's latency_table)."""
    segs = [s["median"] for s in batch["segments_ms"]]
    ramps = [s["median"] for s in batch["ramps_ms"]]
    v = batch["vanilla_ms"]["median"]
    total = sum(segs)
    if not total > 0 or not v > 0:
        return None
    f = v / total
    up, acc = [], 0.0
    for s in segs[:-1]:
        acc += s * f
        up.append(min(acc, v))
    return {"V": v, "share_up_to": [u / v for u in up], "ramp_share": [r * f / v for r in ramps]}


def compare_profiles(ours, torch_rec):
    rows = []
    by_bs = {b["batch_size"]: b for b in (torch_rec or {}).get("batches", [])}
    our_bs = {b["batch_size"]: b for b in (ours or {}).get("batches", [])}
    for bs in sorted(set(by_bs) | set(our_bs)):
        o, t = our_bs.get(bs), by_bs.get(bs)
        row = {"batch_size": bs}
        for tag, b in (("ours", o), ("torch", t)):
            if b is None:
                continue
            tb = table(b)
            v = b["vanilla_ms"]
            row[f"V_{tag}_ms"] = v["median"]
            row[f"p95_over_median_{tag}"] = v["p95"] / v["median"] if v["median"] > 0 else None
            row[f"first_forward_{tag}_ms"] = b.get("first_forward_ms")
            if tb:
                row[f"site_share_{tag}"] = tb["share_up_to"]
                row[f"ramp_share_{tag}"] = tb["ramp_share"]
        if o is not None and t is not None:
            row["V_ratio_ours_over_torch"] = (o["vanilla_ms"]["median"] / t["vanilla_ms"]["median"]
                                              if t["vanilla_ms"]["median"] > 0 else None)
            so, st = row.get("site_share_ours"), row.get("site_share_torch")
            if so and st and len(so) == len(st):
                row["site_share_max_diff_points"] = 100 * max(abs(a - b) for a, b in zip(so, st))
        rows.append(row)
    return rows


def cmd_report(args):
    d = args.dir
    steps = load(os.path.join(d, "steps.json")) or []
    report = {
        "what": "ee-backend GPU validation (scripts/gpu/validate.sh)",
        "steps": steps,
        "probe": None,
        "models": {},
    }
    probe = os.path.join(d, "probe.txt")
    if os.path.exists(probe):
        with open(probe) as f:
            report["probe"] = f.read()
    for model in MODELS:
        ref = load(os.path.join(d, "ref", f"{model}_torch_logits.json"))
        ours = load(os.path.join(d, f"ours_{model}_logits.json"))
        entry = {}
        if ref:
            entry["torch_versions"] = ref.get("versions")
            entry["torch_first_forward_ms"] = ref.get("first_forward_ms")
        if ref and ours:
            delta = max_delta(ours, ref)
            entry["parity"] = {"max_abs_delta": delta, "tolerance": 1e-3,
                               "ok": delta is not None and delta < 1e-3}
        our_prof = load(os.path.join(d, f"ours_{model}", "profile.json"))
        torch_prof = load(os.path.join(d, f"torch_profile_{model}.json"))
        if our_prof or torch_prof:
            entry["device_ours"] = (our_prof or {}).get("device")
            entry["device_torch"] = (torch_prof or {}).get("device")
            entry["tf32_torch"] = (torch_prof or {}).get("tf32")
            entry["batches"] = compare_profiles(our_prof, torch_prof)
        for s in steps:
            if s.get("rc") != 0:
                continue
            if s.get("name") == f"forward_{model}":
                entry["time_to_first_result_ours_s"] = s.get("seconds")
            if s.get("name") == f"make_{model}":
                entry["time_to_first_result_torch_s"] = s.get("seconds")
        if entry:
            report["models"][model] = entry
    write_json(args.out, report)
    log(f"wrote {args.out}")


# ----------------------------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--model", choices=MODELS, required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--batch", type=int, default=2)
    m.add_argument("--seq-len", type=int, default=128)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    pr = sub.add_parser("profile")
    pr.add_argument("--model", choices=MODELS, required=True)
    pr.add_argument("--out", required=True)
    pr.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")],
                    default=[1, 2, 4, 8, 16, 32, 64])
    pr.add_argument("--warmup", type=int, default=10)
    pr.add_argument("--reps", type=int, default=30)
    pr.add_argument("--seq-len", type=int, default=128)
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    pr.add_argument("--budget-s", type=float, default=None,
                    help="stop starting new batch sizes after this many seconds")
    c = sub.add_parser("compare")
    c.add_argument("--ours", required=True)
    c.add_argument("--ref", required=True)
    c.add_argument("--tol", type=float, default=1e-3)
    r = sub.add_parser("report")
    r.add_argument("--dir", required=True)
    r.add_argument("--out", required=True)
    args = p.parse_args()
    return {"make": cmd_make, "profile": cmd_profile, "compare": cmd_compare,
            "report": cmd_report}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
