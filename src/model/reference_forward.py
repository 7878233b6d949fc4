#!/usr/bin/env python3
"""reference_forward.py - an independent reference for the forward pass.

A plain-Python (float64, no libraries) transcription of the Hugging Face
modeling code for Llama, Mistral, Qwen2 and Phi-3: RMSNorm, rotate_half
rotary embeddings (linear, llama3 and longrope scaling, with Phi-3's
attention factor and its short/long factor switch on the sequence length),
grouped-query attention with an optional sliding window, q/k/v biases, fused
qkv_proj / gate_up_proj, SwiGLU, tied or separate head. It reads an HF folder
(config.json + float32 model.safetensors), so it shares no code with
src/model/.

Usage:
  python3 reference_forward.py MODEL_DIR TOKENS      logits, one line per token
  python3 reference_forward.py DIR                   the C header reference_logits.h
                                                     for the models test_reference writes
"""
import json, math, struct, sys

TOKENS = [3, 17, 50, 41, 9, 7, 30, 12]
NAMES = ['phi3s', 'phi3l', 'mistral', 'qwen2', 'llama3']


def forward(d, toks):
    cfg = json.load(open(d + '/config.json'))
    raw = open(d + '/model.safetensors', 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]; hdr = json.loads(raw[8:8+n]); base = 8 + n
    def T(name):
        h = hdr[name]; b, e = h['data_offsets']; vals = struct.unpack('<%df' % ((e-b)//4), raw[base+b:base+e])
        if len(h['shape']) == 1: return list(vals)
        r, c = h['shape']; return [list(vals[i*c:(i+1)*c]) for i in range(r)]
    H = cfg['num_attention_heads']; KV = cfg.get('num_key_value_heads', H); D = cfg['hidden_size']
    hd = cfg.get('head_dim') or D // H; eps = cfg['rms_norm_eps']; theta = cfg.get('rope_theta', 10000.0)
    L = cfg['num_hidden_layers']; mt = cfg['model_type']
    sw = cfg.get('sliding_window') if mt in ('mistral', 'phi3') or cfg.get('use_sliding_window') else None
    def mv(W, x): return [sum(a*b for a, b in zip(row, x)) for row in W]
    def rms(x, w): s = 1/math.sqrt(sum(v*v for v in x)/len(x) + eps); return [wi*v*s for wi, v in zip(w, x)]
    # rotary
    inv = [1.0 / theta ** (2*i/hd) for i in range(hd//2)]; attn_factor = 1.0
    rs = cfg.get('rope_scaling')
    if rs:
        ty = rs.get('rope_type', rs.get('type'))
        if ty == 'longrope':
            orig = cfg.get('original_max_position_embeddings'); mx = cfg['max_position_embeddings']
            f = rs['long_factor'] if len(toks) > orig else rs['short_factor']
            inv = [1.0 / (f[i] * theta ** (2*i/hd)) for i in range(hd//2)]
            s = mx / orig; attn_factor = 1.0 if s <= 1 else math.sqrt(1 + math.log(s)/math.log(orig))
        elif ty == 'linear': inv = [v / rs['factor'] for v in inv]
        elif ty == 'llama3':
            fac, lo, hi, old = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor'], rs['original_max_position_embeddings']
            out = []
            for v in inv:
                wl = 2*math.pi/v
                if wl < old/hi: out.append(v)
                elif wl > old/lo: out.append(v/fac)
                else:
                    sm = (old/wl - lo)/(hi - lo); out.append((1-sm)*v/fac + sm*v)
            inv = out
    def rope(vec, p):
        o = list(vec)
        for h in range(len(vec)//hd):
            for i in range(hd//2):
                c = math.cos(p*inv[i])*attn_factor; s = math.sin(p*inv[i])*attn_factor
                a, b = vec[h*hd+i], vec[h*hd+hd//2+i]
                o[h*hd+i] = a*c - b*s; o[h*hd+hd//2+i] = b*c + a*s
        return o
    P = 'model.layers.%d.'
    emb = T('model.embed_tokens.weight'); head = T('lm_head.weight') if 'lm_head.weight' in hdr else emb
    xs = [list(emb[t]) for t in toks]; Ks = [[] for _ in range(L)]; Vs = [[] for _ in range(L)]
    for l in range(L):
        p = P % l
        if mt == 'phi3':
            qkv = T(p+'self_attn.qkv_proj.weight'); Wq, Wk, Wv = qkv[:H*hd], qkv[H*hd:H*hd+KV*hd], qkv[H*hd+KV*hd:]
            gu = T(p+'mlp.gate_up_proj.weight'); Wg, Wu = gu[:len(gu)//2], gu[len(gu)//2:]
        else:
            Wq, Wk, Wv = T(p+'self_attn.q_proj.weight'), T(p+'self_attn.k_proj.weight'), T(p+'self_attn.v_proj.weight')
            Wg, Wu = T(p+'mlp.gate_proj.weight'), T(p+'mlp.up_proj.weight')
        bq = T(p+'self_attn.q_proj.bias') if p+'self_attn.q_proj.bias' in hdr else None
        bk = T(p+'self_attn.k_proj.bias') if bq else None; bv = T(p+'self_attn.v_proj.bias') if bq else None
        Wo, Wd = T(p+'self_attn.o_proj.weight'), T(p+'mlp.down_proj.weight')
        n1, n2 = T(p+'input_layernorm.weight'), T(p+'post_attention_layernorm.weight')
        for t in range(len(toks)):
            h = rms(xs[t], n1); q, k, v = mv(Wq, h), mv(Wk, h), mv(Wv, h)
            if bq: q = [a+b for a, b in zip(q, bq)]; k = [a+b for a, b in zip(k, bk)]; v = [a+b for a, b in zip(v, bv)]
            Ks[l].append(rope(k, t)); Vs[l].append(v); q = rope(q, t)
        new = []
        for t in range(len(toks)):
            h = rms(xs[t], n1); q = mv(Wq, h)
            if bq: q = [a+b for a, b in zip(q, bq)]
            q = rope(q, t); att = []
            for hh in range(H):
                g = hh // (H // KV); lo = max(0, t - sw + 1) if sw else 0
                sc = [sum(q[hh*hd+i]*Ks[l][s][g*hd+i] for i in range(hd))/math.sqrt(hd) for s in range(lo, t+1)]
                m = max(sc); e = [math.exp(z-m) for z in sc]; z = sum(e)
                att += [sum(e[j]/z*Vs[l][lo+j][g*hd+i] for j in range(len(e))) for i in range(hd)]
            x = [a+b for a, b in zip(xs[t], mv(Wo, att))]
            h = rms(x, n2); gt, up = mv(Wg, h), mv(Wu, h)
            x = [a+b for a, b in zip(x, mv(Wd, [gg/(1+math.exp(-gg))*u for gg, u in zip(gt, up)]))]
            new.append(x)
        xs = new
    nf = T('model.norm.weight')
    return [mv(head, rms(xs[t], nf)) for t in range(len(toks))]


def main():
    if len(sys.argv) == 3:
        for row in forward(sys.argv[1], [int(t) for t in sys.argv[2].split(',')]):
            print(' '.join('%.7g' % v for v in row))
        return
    d = sys.argv[1]
    out = ['/* reference_logits.h - generated by src/model/reference_forward.py (do not edit):',
           ' * logits of the models test_reference.c writes, computed by an independent',
           ' * float64 Python transcription of the Hugging Face modeling code. */',
           '#ifndef ELLM_REFERENCE_LOGITS_H', '#define ELLM_REFERENCE_LOGITS_H',
           '#define REF_N_MODELS %d' % len(NAMES), '#define REF_N_TOKENS %d' % len(TOKENS), '#define REF_VOCAB 64',
           'static const char *const k_ref_names[REF_N_MODELS] = {%s};' % ', '.join('"%s"' % n for n in NAMES),
           'static const float k_ref_logits[REF_N_MODELS][REF_N_TOKENS * REF_VOCAB] = {']
    for n in NAMES:
        rows = forward(d + '/' + n, TOKENS)
        vals = [v for r in rows for v in r]
        assert len(vals) == len(TOKENS) * 64
        out.append('    {')
        for i in range(0, len(vals), 8):
            out.append('        ' + ', '.join('%.9gf' % v for v in vals[i:i + 8]) + ',')
        out.append('    },')
    out += ['};', '#endif']
    print('\n'.join(out))


if __name__ == '__main__':
    main()
