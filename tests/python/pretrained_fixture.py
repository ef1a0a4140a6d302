#!/usr/bin/env python3
"""Fixtures for `vidcls models pull` (tests/pretrained.rs): reference weights, the hosts that
publish them (on 127.0.0.1), and the reference implementation's scores.

  make DIR                  random-init state dicts of the reference implementations (torchvision
                            r3d_18 / mc3_18 / r2plus1d_18 / s3d with BatchNorm statistics calibrated
                            so outputs are peaked; transformers' VideoMAE-small), saved as legacy
                            `.pth`, zip `.pth` and `.safetensors` under DIR/www laid out like
                            download.pytorch.org and the Hugging Face Hub, plus bad files
  serve DIR STATE           serves DIR/www on a free loopback port, writes the port to STATE/port
                            and model cards pointing at it to STATE/cards/, logs Range headers to
                            STATE/ranges.log; special paths: /stall/F (half of F, then silence),
                            /drop/F (half of F, then the connection closes), /html/F (an HTML page
                            with status 200), /plain/weights.pth (r3d_18's file under a name
                            without a hash), /private/REPO/... (the Hub repo again, only with
                            `Authorization: Bearer secret`); it stops when its parent process ends
  reference DIR NAME VIEWS  the reference model's scores on vidcls's dumped views (VIEWS/<i>.npy):
                            one JSON list per video, the mean of per-view softmax probabilities
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import pickle
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import export_graphs as eg  # noqa: E402
import export_models as em  # noqa: E402

# name -> serialization of its published file (the 2019 torchvision files are legacy pickles)
TORCHVISION = {"r3d_18": "legacy", "mc3_18": "zip", "r2plus1d_18": "legacy", "s3d": "zip"}
HUB_REPO = "vidcls-test/videomae-small-k400"
HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567"


def reference_model(name: str) -> torch.nn.Module:
    """The reference implementation with the fixture's weights (deterministic)."""
    if name == "videomae_small":
        torch.manual_seed(7)
        model = eg.build_videomae("videomae_small")
        with torch.no_grad():
            # transformers starts biases at 0 and LayerNorm at 1, where a misplaced one would
            # go unseen: every parameter moves a little; then the classifier is scaled so the
            # outputs are peaked, as a trained classifier's are.
            g = torch.Generator().manual_seed(7)
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.02)
            model.classifier.weight.mul_(40.0)
        return model
    spec = em.SPECS[name]
    torch.manual_seed(7)
    model = spec.build()
    _, crop, mean, std = em.preprocessing(spec)
    em.calibrate(model, 16, crop, 7, mean, std)
    return model.eval()


def sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Evil:
    """Unpickling this runs a shell command: the file a pull must refuse."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def make(d: Path) -> None:
    www = d / "www" / "models"
    www.mkdir(parents=True, exist_ok=True)
    for name, form in TORCHVISION.items():
        sd = reference_model(name).state_dict()
        tmp = www / f"{name}.tmp"
        torch.save(sd, tmp, _use_new_zipfile_serialization=(form == "zip"))
        # torchvision's naming: the first 8 hex digits of the file's sha256 after a dash
        tmp.replace(www / f"{name}-{sha256(tmp)[:8]}.pth")
    # A checkpoint with code in it, and a truncated copy of a good one.
    evil = {"state_dict": {"fc.weight": Evil(d / "PWNED")}}
    (www / "evil.pth").write_bytes(pickle.dumps(evil, protocol=2))
    good = next(www.glob("r3d_18-*.pth"))
    (www / "truncated.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    # The Hub: a VideoMAE-small classifier with 400 labels, as transformers saves it.
    model = reference_model("videomae_small")
    hub = d / "www" / HUB_REPO / "resolve" / HUB_COMMIT
    hub.mkdir(parents=True, exist_ok=True)
    cfg = model.config.to_dict()
    cfg["id2label"] = {str(i): f"action {i}" for i in range(400)}
    cfg["architectures"] = ["VideoMAEForVideoClassification"]
    (hub / "config.json").write_text(json.dumps(cfg))
    from safetensors.torch import save_file

    # The Hub's VideoMAE checkpoints name the query and value biases `q_bias` / `v_bias`.
    sd = {k.replace(".query.bias", ".q_bias").replace(".value.bias", ".v_bias"): v.contiguous()
          for k, v in model.state_dict().items()}
    save_file(sd, str(hub / "model.safetensors"))


def cards(d: Path, state: Path, port: int) -> None:
    out = state / "cards"
    out.mkdir(exist_ok=True)
    www = d / "www" / "models"
    base = f"http://127.0.0.1:{port}"
    for name in TORCHVISION:
        f = next(www.glob(f"{name}-*.pth"))
        card = json.loads((ROOT / "configs" / f"{name}.json").read_text())
        card["labels_file"] = str(ROOT / "configs" / card["labels_file"])
        card["pretrained"].update(url=f"{base}/models/{f.name}", sha256=sha256(f), bytes=f.stat().st_size)
        card["pretrained"]["graph"] = str(ROOT / "models" / card["pretrained"]["graph"])
        (out / f"{name}.json").write_text(json.dumps(card, indent=2))
    good = next(www.glob("r3d_18-*.pth"))
    bad = {
        # name: (url path, sha256, bytes)
        "wrong_sha": ("plain/weights.pth", "0" * 64, None),
        "truncated": ("models/truncated.pth", sha256(good), good.stat().st_size),
        "evil": ("models/evil.pth", sha256(www / "evil.pth"), None),
        "html": (f"html/{good.name}", sha256(good), None),
        "stall": (f"stall/{good.name}", sha256(good), good.stat().st_size),
        "drop": (f"drop/{good.name}", sha256(good), good.stat().st_size),
        "missing": ("models/nothing-here.pth", sha256(good), None),
    }
    r3d = json.loads((out / "r3d_18.json").read_text())
    for name, (path, sha, size) in bad.items():
        card = dict(r3d, name=f"bad_{name}")
        card["pretrained"] = dict(r3d["pretrained"], url=f"{base}/{path}", sha256=sha, bytes=size)
        if size is None:
            card["pretrained"].pop("bytes")
        (out / f"bad_{name}.json").write_text(json.dumps(card, indent=2))


class Handler(http.server.BaseHTTPRequestHandler):
    root: Path
    ranges: Path

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        if self.path.startswith("/private/"):
            # A gated repo: the test repo again, for `Authorization: Bearer secret` only.
            if self.headers.get("Authorization") != "Bearer secret":
                self.send_error(401)
                return
            self.path = "/vidcls-test/" + self.path.removeprefix("/private/")
        kind, _, rest = self.path.lstrip("/").partition("/")
        special = kind in ("stall", "drop", "html")
        rel = f"models/{rest}" if special else self.path.lstrip("/")
        if kind == "plain":
            rel = str(next((self.root / "models").glob("r3d_18-*.pth")).relative_to(self.root))
        path = (self.root / rel).resolve()
        if not path.is_file() or self.root not in path.parents:
            self.send_error(404)
            return
        data = path.read_bytes()
        if kind == "html":
            page = b"<!DOCTYPE html><html><body>Please sign in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng:
            with open(self.ranges, "a") as f:
                f.write(f"{self.path} {rng}\n")
            start = int(rng.removeprefix("bytes=").split("-")[0])
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        if "/resolve/" in self.path:
            self.send_header("X-Repo-Commit", HUB_COMMIT)
            if path.suffix == ".safetensors":
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.end_headers()
        if special:
            self.wfile.write(data[start : len(data) // 2])
            self.wfile.flush()
            if kind == "stall":
                time.sleep(60)
            return  # drop: the connection closes short of Content-Length
        self.wfile.write(data[start:])


def exit_with_parent() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def serve(d: Path, state: Path) -> None:
    # The Hub resolves a branch to a commit: `main` is the same files as the commit.
    hub = d / "www" / HUB_REPO / "resolve"
    if not (hub / "main").exists():
        shutil.copytree(hub / HUB_COMMIT, hub / "main")
    Handler.root = (d / "www").resolve()
    Handler.ranges = state / "ranges.log"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port = server.server_address[1]
    cards(d, state, port)
    (state / "port.tmp").write_text(str(port))
    (state / "port.tmp").replace(state / "port")
    # Stops by itself: with the test process that started it, and after 30 minutes at most.
    threading.Thread(target=exit_with_parent, daemon=True).start()
    threading.Timer(1800, server.shutdown).start()
    server.serve_forever()


def reference(d: Path, name: str, views: Path) -> None:
    """Graphs with a channels-last layout run torchvision's module in that layout too (its
    CPU convolutions round differently there: 2.5e-5 in probability on S3D)."""
    model = reference_model(name)
    layout = torch.channels_last_3d if name in eg.CHANNELS_LAST else torch.contiguous_format
    model = model.to(memory_format=layout)
    out = []
    files = sorted(views.glob("*.npy"), key=lambda p: int(p.stem))
    with torch.no_grad():
        for f in files:
            x = torch.from_numpy(np.load(f)).contiguous(memory_format=layout)
            if name == "videomae_small":
                logits = model(pixel_values=x.permute(0, 2, 1, 3, 4)).logits
            else:
                logits = model(x)
            out.append(logits.softmax(dim=1).mean(dim=0).tolist())
    print(json.dumps(out))


def main() -> int:
    cmd, d = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(2)
    if cmd == "make":
        make(d)
    elif cmd == "serve":
        serve(d, Path(sys.argv[3]))
    elif cmd == "reference":
        reference(d, sys.argv[3], Path(sys.argv[4]))
    else:
        raise SystemExit(f"unknown command {cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
