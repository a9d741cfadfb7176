#!/usr/bin/env python3
"""Cross-checks backend/tests/fixtures/minilm-reference.json against PyTorch: Hugging Face
`transformers` BertModel (float64) on the MiniLM checkpoint, same ids and mask, mean-pooled and
token-0 last hidden states at the fixture's dims. Needs torch and transformers (pip).

usage: minilm_torch_check.py MODEL_DIR FIXTURE_JSON
"""
import json, sys, torch
from transformers import BertModel
model_dir, fixture = sys.argv[1], sys.argv[2]
d = json.load(open(fixture))
m = BertModel.from_pretrained(model_dir, add_pooling_layer=False).eval().double()
ids = torch.tensor(d["ids"]); mask = torch.tensor(d["mask"])
with torch.no_grad():
    h = m(input_ids=ids, attention_mask=mask).last_hidden_state
mf = mask.unsqueeze(-1).double()
mean = (h * mf).sum(1) / mf.sum(1)
dims = d["dims"]
worst = 0.0
for i in range(len(d["ids"])):
    for j, k in enumerate(dims):
        worst = max(worst, abs(mean[i, k].item() - d["mean_pooled"][i][j]), abs(h[i, 0, k].item() - d["token0"][i][j]))
print(f"max |transformers BertModel (float64) - fixture| = {worst:.2e} over {len(d['ids'])} sentences x {len(dims)} dims x 2")
