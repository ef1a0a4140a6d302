#!/usr/bin/env python3
"""Evaluates a motion model on a set made by scripts/motion_dataset.py.

Prints top-1 accuracy, the confusion matrix, the pair-wise accuracy (of the two actions of the
clip's pair, is the right one ranked above its opposite?), and (with `--reverse`) the same on the
clips re-encoded backwards in time (`ffmpeg -vf reverse`), where the right answer is the opposite
action.

Predictors:
  vidcls   runs `target/release/vidcls predict --model CONFIG --format jsonl --top-k 8 FILES...`
  python   runs the TorchScript model in process on what scripts/reference_predict.py makes of
           each clip: PyAV decoding, vidcls's frame choice (scripts/frame_sampling.py; one centre
           clip), /255 * value_scale, bilinear resize without antialias, centre crop,
           (x - mean) / std, N x C x T x H x W.

    python scripts/eval_motion.py --data /tmp/motion-test --model configs/motion.json --reverse
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import motion_dataset as md  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------
# The in-process reference pipeline.


def load_config(path: Path) -> dict:
    cfg = json.loads(Path(path).read_text())
    for cand in (path.parent / cfg["file"], path.parent.parent / "models" / cfg["file"],
                 ROOT / "models" / cfg["file"]):
        if cand.exists():
            cfg["_model_path"] = str(cand)
            break
    else:
        raise SystemExit(f"model file {cfg['file']} of {path} not found")
    return cfg


def clip_tensor(path: str, cfg: dict, frames: int | None = None):
    """The model input for one centre clip, made by scripts/reference_predict.py's pipeline
    (decoding, frame choice by scripts/frame_sampling.py, preprocessing): 1 x C x T x H x W."""
    import reference_predict as ref
    decoded = ref.decode(path)
    s = cfg["sampling"]
    [(idx, _, _)] = ref.plan(decoded, frames or cfg["frames"], s.get("fps"), int(s.get("stride", 1)), 1)
    return ref.preprocess(np.stack([decoded.frames[k] for k in idx]), cfg, 1)[0].unsqueeze(0)


def predict_python(files, cfg, frames=None, threads=2):
    import torch
    torch.set_num_threads(threads)
    model = torch.jit.load(cfg["_model_path"], map_location="cpu").eval()
    preds = {}
    with torch.no_grad():
        for f in files:
            try:
                probs = model(clip_tensor(f, cfg, frames))[0].softmax(0)
                preds[f] = ([cfg["labels"][i] for i in probs.argsort(descending=True).tolist()],
                            float(probs.max()))
            except Exception as e:  # one bad file is one wrong answer, not a stopped run
                print(f"eval: {f}: {e}", file=sys.stderr)
                preds[f] = None
    return preds


def predict_vidcls(files, config_path, binary, batch=200):
    preds = {f: None for f in files}
    for i in range(0, len(files), batch):
        chunk = files[i:i + batch]
        cmd = [str(binary), "predict", "--model", str(config_path), "--format", "jsonl",
               "--top-k", str(len(md.LABELS)), *chunk]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd[:6])} ... failed ({proc.returncode}):\n{proc.stderr}")
        for line in proc.stdout.splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            top = rec.get("top_k") or []
            path = rec.get("path")
            if path in preds and top:
                preds[path] = ([t["label"] for t in top], top[0]["score"])
    return preds


# ---------------------------------------------------------------------------------------------
# Reversed copies.


def _reverse_one(job):
    src, dst, codec, quality = job
    if Path(dst).is_file() and Path(dst).stat().st_mtime >= Path(src).stat().st_mtime:
        return dst                             # made by an earlier run into --reverse-dir
    _, args = md.CODECS[codec]
    cmd = ["ffmpeg", "-y", "-nostdin", "-v", "error", "-i", src, "-vf", "reverse", *args(quality),
           "-threads", "1", "-an", dst]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(f"reversing {src} failed: {proc.stderr.decode(errors='replace')}")
    return dst


def reverse_all(rows, data: Path, out: Path, jobs: int):
    out.mkdir(parents=True, exist_ok=True)
    work = []
    for r in rows:
        p = json.loads(r["params"])
        dst = out / r["path"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        work.append((str(data / r["path"]), str(dst), p["codec"], p["quality"]))
    with Pool(jobs) as pool:
        return pool.map(_reverse_one, work, chunksize=4)


# ---------------------------------------------------------------------------------------------
# Scores.


def score(truth, preds):
    """preds: for each clip (labels best first, top-1 score), or None where the clip failed."""
    rankings = [p[0] if p else None for p in preds]
    top_scores = [p[1] for p in preds if p]
    labels = md.LABELS
    n = len(labels)
    cm = np.zeros((n, n + 1), int)               # last column: no prediction
    pair_right = {}
    for t, r in zip(truth, rankings):
        p = r[0] if r else None
        cm[labels.index(t), labels.index(p) if p in labels else n] += 1
        o = md.OPPOSITE[t]
        key = "/".join(next(pr for pr in md.PAIRS if t in pr))
        ok = bool(r) and t in r and (o not in r or r.index(t) < r.index(o))
        pair_right.setdefault(key, []).append(ok)
    total = len(truth)
    correct = int(np.trace(cm[:, :n]))
    pairs = {}
    for a, b in md.PAIRS:
        ia, ib = labels.index(a), labels.index(b)
        in_pair = cm[ia, ia] + cm[ia, ib] + cm[ib, ia] + cm[ib, ib]
        right = cm[ia, ia] + cm[ib, ib]
        rows = cm[ia].sum() + cm[ib].sum()
        pr = pair_right.get(f"{a}/{b}", [])
        pairs[f"{a}/{b}"] = {
            "pairwise": round(sum(pr) / len(pr), 4) if pr else None,
            "within_pair_top1": round(right / in_pair, 4) if in_pair else None,
            "pair_found": round(in_pair / rows, 4) if rows else None,
        }
    allp = [x for v in pair_right.values() for x in v]
    # How the answers spread: a model that learned nothing gives one class to most clips.
    answered = cm[:, :n].sum(axis=0)
    same_pair = sum(cm[labels.index(a), labels.index(b)] for pr in md.PAIRS for a in pr for b in pr)
    return {"n": total, "accuracy": round(correct / total, 4) if total else None,
            "pairwise": round(sum(allp) / len(allp), 4) if allp else None,
            "pair_found": round(same_pair / total, 4) if total else None,
            "within_pair_top1": round(correct / same_pair, 4) if same_pair else None,
            "classes_answered": int((answered > 0).sum()),
            "commonest": [labels[int(answered.argmax())], int(answered.max())],
            "mean_top1_score": round(float(np.mean(top_scores)), 4) if top_scores else None,
            "confusion": cm.tolist(), "pairs": pairs}


def print_report(title, s, out=sys.stdout):
    labels = md.LABELS
    print(f"\n== {title}: top-1 {s['accuracy']:.2%}, pair-wise {s['pairwise']:.2%} "
          f"of {s['n']} clips", file=out)
    within = "n/a" if s["within_pair_top1"] is None else f"{s['within_pair_top1']:.2%}"
    print(f"   top-1 in the right pair {s['pair_found']:.2%}, right within the pair {within}; "
          f"{s['classes_answered']} of {len(labels)} classes answered, the commonest "
          f"{s['commonest'][0]} for {s['commonest'][1]} clips; mean top-1 score "
          f"{s['mean_top1_score']}", file=out)
    short = [lab.replace("move_", "m_").replace("rotate_", "r_").replace("zoom_", "z_")
             for lab in labels]
    w = max(len(x) for x in labels) + 1
    print(" " * w + " ".join(f"{x:>6}" for x in short) + "   none", file=out)
    for i, row in enumerate(s["confusion"]):
        print(f"{labels[i]:<{w}}" + " ".join(f"{v:>6}" for v in row), file=out)
    def pct(x):
        return "n/a" if x is None else f"{x:.2%}"
    for k, v in s["pairs"].items():
        print(f"  {k:<22} pair-wise {pct(v['pairwise']):>7}   pair found {pct(v['pair_found']):>7}"
              f"   top-1 within the pair {pct(v['within_pair_top1']):>7}", file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="folder with manifest.csv")
    ap.add_argument("--model", type=Path, default=ROOT / "configs/motion.json",
                    help="model config (JSON)")
    ap.add_argument("--predictor", choices=("python", "vidcls"), default="python")
    ap.add_argument("--vidcls", type=Path, default=ROOT / "target/release/vidcls",
                    help="vidcls binary for --predictor vidcls")
    ap.add_argument("--frames", type=int, help="frames per clip instead of the config's (python)")
    ap.add_argument("--reverse", action="store_true",
                    help="also score the clips reversed in time (answer: the opposite action)")
    ap.add_argument("--reverse-dir", type=Path,
                    help="keep the reversed clips here (and reuse them on the next run)")
    ap.add_argument("--limit", type=int, help="only the first N clips of the manifest")
    ap.add_argument("--jobs", type=int, default=2, help="ffmpeg processes for reversing")
    ap.add_argument("--json-out", type=Path, help="write the scores here as JSON")
    args = ap.parse_args(argv)

    with open(args.data / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if args.limit:
        rows = rows[:args.limit]
    cfg = load_config(args.model)
    if cfg["labels"] != md.LABELS:
        raise SystemExit(f"{args.model}: labels {cfg['labels']} are not the motion labels")

    def run(files):
        if args.predictor == "python":
            return predict_python(files, cfg, args.frames)
        return predict_vidcls(files, args.model, args.vidcls)

    t0 = time.time()
    files = [str(args.data / r["path"]) for r in rows]
    preds = run(files)
    truth = [r["label"] for r in rows]
    result = {"model": str(args.model), "predictor": args.predictor, "data": str(args.data),
              "frames": args.frames or cfg["frames"],
              "forward": score(truth, [preds[f] for f in files])}
    clips = [{"path": r["path"], "label": r["label"],
              "predicted": (preds[f] or [[None]])[0][0]} for r, f in zip(rows, files)]
    print_report(f"{cfg['name']} on {args.data}", result["forward"])
    if args.reverse:
        with tempfile.TemporaryDirectory(prefix="motion-rev-") as tmp:
            rdir = args.reverse_dir or Path(tmp)
            rfiles = reverse_all(rows, args.data, rdir, args.jobs)
            rpreds = run(rfiles)
        opposite = [md.OPPOSITE[t] for t in truth]
        result["reversed"] = score(opposite, [rpreds[f] for f in rfiles])
        for c, f in zip(clips, rfiles):
            c["reversed_predicted"] = (rpreds[f] or [[None]])[0][0]
        print_report("reversed in time (truth = the opposite action)", result["reversed"])
    result["clips"] = clips
    result["seconds"] = round(time.time() - t0, 1)
    print(f"\n({result['seconds']}s)")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
