#!/usr/bin/env python3
"""PyTorch reference for scripts/finetune-minilm.sh: the same fine-tune as `sentiment-trainer
train` (all-MiniLM-L6-v2 + fresh 3-way head, max 64 tokens, batch 32 length-bucketed, AdamW
lr 5e-5, weight decay 0.01 except biases/LayerNorm weights, 6 % linear warm-up then linear
decay, clip 1.0, dropout as configured), on 2 threads. Prints one JSON line:
{"examples_per_sec", "wall_seconds", "macro_recall", "accuracy"} on the validation split.

Usage: python finetune_minilm_torch.py MODEL_DIR TRAIN_TEXT VAL_TEXT [--epochs 1] [--threads 2]
       [--max-steps N]
(the *_labels.txt files sit beside the *_text.txt files). --max-steps stops after the first N
updates of the full schedule (a throughput measurement on the same batches when a whole epoch
does not fit; the validation figures are then those of a partly trained model).
"""
import argparse, json, math, random, time

import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup


def load(path):
    texts = open(path, encoding="utf-8").read().split("\n")
    labels = open(path.replace("_text.txt", "_labels.txt"), encoding="utf-8").read().split("\n")
    pairs = [(t, int(l)) for t, l in zip(texts, labels) if l.strip()]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def buckets(lengths, bs, rng):
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for i in range(0, len(order), bs * 50):
        mega = sorted(order[i:i + bs * 50], key=lambda j: -lengths[j])
        batches += [mega[k:k + bs] for k in range(0, len(mega), bs)]
    rng.shuffle(batches)
    return batches


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir"); ap.add_argument("train"); ap.add_argument("val")
    ap.add_argument("--epochs", type=int, default=1); ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32); ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-5); ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed)
    tok = AutoTokenizer.from_pretrained(a.model_dir)
    model = BertForSequenceClassification.from_pretrained(
        a.model_dir, num_labels=3, id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2})
    texts, labels = load(a.train)
    ids = tok(texts, truncation=True, max_length=a.max_len)["input_ids"]
    steps = a.epochs * math.ceil(len(ids) / a.batch_size)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)], "weight_decay": 0.01},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=a.lr)
    sched = get_linear_schedule_with_warmup(opt, math.ceil(0.06 * steps), steps)
    rng = random.Random(a.seed)
    pad = tok.pad_token_id
    model.train()
    t0 = time.time(); seen = 0; done = 0
    for _ in range(a.epochs):
        for b in buckets([len(x) for x in ids], a.batch_size, rng):
            if a.max_steps and done >= a.max_steps:
                break
            width = max(len(ids[j]) for j in b)
            x = torch.tensor([ids[j] + [pad] * (width - len(ids[j])) for j in b])
            m = (x != pad).long()
            y = torch.tensor([labels[j] for j in b])
            loss = F.cross_entropy(model(input_ids=x, attention_mask=m).logits, y)
            opt.zero_grad(); loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step(); seen += len(b); done += 1
    wall = time.time() - t0
    model.eval()
    vt, vl = load(a.val)
    preds = []
    with torch.no_grad():
        for i in range(0, len(vt), 64):
            enc = tok(vt[i:i + 64], truncation=True, max_length=a.max_len, padding=True, return_tensors="pt")
            preds += model(**enc).logits.argmax(-1).tolist()
    recall = []
    for c in range(3):
        idx = [i for i, l in enumerate(vl) if l == c]
        recall.append(sum(preds[i] == c for i in idx) / max(1, len(idx)))
    acc = sum(p == l for p, l in zip(preds, vl)) / len(vl)
    print(json.dumps({"examples_per_sec": seen / wall, "wall_seconds": wall, "steps": done, "total_steps": steps,
                      "macro_recall": sum(recall) / 3, "accuracy": acc}))


if __name__ == "__main__":
    main()
