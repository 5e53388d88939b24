"""The PyTorch side of `npm run bench -- --torch`: the GPT-2 training step in plain torch (HF
GPT2LMHeadModel's math: gelu_new, LayerNorm eps 1e-5, finfo.min masking, tied head; torch AdamW and
clip_grad_norm_), one thread, on a suite's config and batches or at gpt2 (small) size with random
tokens. Prints one JSON line: ms per step, forward ms, peak RSS and the BLAS torch was built with.
Optional: Parity never needs Python; this is only the baseline its speed is compared with."""
import json, math, resource, sys, time
import torch

args = json.loads(sys.argv[1])
torch.set_num_threads(1)
torch.manual_seed(0)
if 'config' in args:
    cfg = json.load(open(args['config']))
    V, H, L, NH = cfg['vocab_size'], cfg['n_embd'], cfg['n_layer'], cfg['n_head']
    F, P = cfg.get('n_inner') or 4 * H, cfg['n_positions']
else:
    V, H, L, NH, F, P = 50257, 768, 12, 12, 3072, 1024


def read_safetensors(path):
    raw = open(path, 'rb').read()
    n = int.from_bytes(raw[:8], 'little')
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == '__metadata__':
            continue
        b, e = info['data_offsets']
        dtype = {'I32': torch.int32, 'I64': torch.int64, 'F32': torch.float32}[info['dtype']]
        out[name] = torch.frombuffer(bytearray(raw[8 + n + b:8 + n + e]), dtype=dtype).reshape(info['shape'])
    return out


steps, warmup = args['steps'], args['warmup']
if 'batches' in args:
    b = read_safetensors(args['batches'])
    batches = [(b['input_ids'][s].long(), b['attention_mask'][s].long(), b['labels'][s].long()) for s in range(warmup + steps)]
else:
    g = torch.Generator().manual_seed(99)
    def one():
        ids = torch.randint(1, V, (args['rows'], args['seq']), generator=g)
        return ids, torch.ones_like(ids), ids.clone()
    batches = [one() for _ in range(warmup + steps)]

def W(*s, std=0.02): return (torch.randn(*s) * std).requires_grad_()
p = {'wte': W(V, H), 'wpe': W(P, H, std=0.01), 'lnf.w': torch.ones(H, requires_grad=True), 'lnf.b': torch.zeros(H, requires_grad=True)}
for i in range(L):
    for k, shape in (('c_attn', (H, 3 * H)), ('a_proj', (H, H)), ('c_fc', (H, F)), ('m_proj', (F, H))):
        p[f'{i}.{k}.w'] = W(*shape)
        p[f'{i}.{k}.b'] = torch.zeros(shape[1], requires_grad=True)
    for k in ('ln1', 'ln2'):
        p[f'{i}.{k}.w'] = torch.ones(H, requires_grad=True)
        p[f'{i}.{k}.b'] = torch.zeros(H, requires_grad=True)

def gelu_new(x): return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
def ln(x, w, b): return torch.nn.functional.layer_norm(x, (H,), w, b, 1e-5)
def forward(ids, mask, labels):
    B, S = ids.shape
    x = p['wte'][ids] + p['wpe'][torch.arange(S)]
    causal = torch.tril(torch.ones(S, S, dtype=torch.bool))
    ext = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for i in range(L):
        h = ln(x, p[f'{i}.ln1.w'], p[f'{i}.ln1.b'])
        qkv = torch.addmm(p[f'{i}.c_attn.b'], h.view(-1, H), p[f'{i}.c_attn.w']).view(B, S, 3 * H)
        q, k, v = (t.view(B, S, NH, H // NH).permute(0, 2, 1, 3) for t in qkv.split(H, dim=2))
        w = torch.matmul(q, k.transpose(-1, -2)) / (H // NH) ** 0.5
        w = torch.softmax(torch.where(causal, w, torch.tensor(torch.finfo(torch.float32).min)) + ext, dim=-1)
        a = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B * S, H)
        x = x + torch.addmm(p[f'{i}.a_proj.b'], a, p[f'{i}.a_proj.w']).view(B, S, H)
        h = ln(x, p[f'{i}.ln2.w'], p[f'{i}.ln2.b'])
        m = gelu_new(torch.addmm(p[f'{i}.c_fc.b'], h.view(-1, H), p[f'{i}.c_fc.w']))
        x = x + torch.addmm(p[f'{i}.m_proj.b'], m, p[f'{i}.m_proj.w']).view(B, S, H)
    logits = torch.matmul(ln(x, p['lnf.w'], p['lnf.b']), p['wte'].t())
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)

decay = [t for t in p.values() if t.dim() > 1]
no_decay = [t for t in p.values() if t.dim() == 1]
opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.01}, {'params': no_decay, 'weight_decay': 0.0}], lr=1e-4, foreach=False)
with torch.no_grad():
    fw = []
    for i in range(4):
        t0 = time.perf_counter(); forward(*batches[0]); fw.append(time.perf_counter() - t0)
times = []
for s, batch in enumerate(batches):
    t0 = time.perf_counter()
    loss = forward(*batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(p.values()), 1.0)
    opt.step()
    if s >= warmup:
        times.append(time.perf_counter() - t0)
# The build says which BLAS interface torch was linked against; /proc/self/maps says which library
# answered it in this run (Debian's generic libblas.so.3 is an alternative: reference BLAS or OpenBLAS).
blas = sorted({line.split()[-1] for line in open('/proc/self/maps') if 'blas' in line.lower()})
print(json.dumps({
    'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blasLibraries': blas,
    'msPerStepMedian': sorted(times)[len(times) // 2] * 1000, 'forwardMsMedian': sorted(fw[1:])[len(fw[1:]) // 2] * 1000,
    'params': sum(t.numel() for t in p.values()), 'peakRssMB': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
