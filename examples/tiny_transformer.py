"""A character-level transformer trained on two chapters of *Pride and Prejudice*, then sampled.

Two pre-norm transformer blocks (``dg.nn.transformer_block``: causal multi-head
attention and a GELU MLP) over learned character and position embeddings,
about seven thousand parameters, trained to predict each next character of
``examples/data/pride_and_prejudice_ch1-2.txt`` (8.8 KB, public domain; see
``examples/data/README.md``). Within a couple of minutes on two cores its loss
falls well below the unigram baseline (the entropy of the characters'
frequencies, what a model that ignores the context can reach), and it writes
text that has the novel's words and punctuation.

Run it with ``python examples/tiny_transformer.py [EPOCHS]``;
``dagrad render examples/tiny_transformer.py:build -o transformer.html --open``
draws one batch's backward pass.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

import dagrad as dg

TEXT = Path(__file__).resolve().parent / "data" / "pride_and_prejudice_ch1-2.txt"


# ------------------------------------------------------------------ data ---


def load_text(path: Path = TEXT) -> str:
    """The training text."""
    return path.read_text(encoding="utf-8")


def vocabulary(text: str) -> str:
    """The text's distinct characters, sorted: character ``vocabulary[i]`` has id ``i``."""
    return "".join(sorted(set(text)))


def windows(text: str, context: int, chars: str) -> dict:
    """Every ``context``-long window of the text (``x``) and the same window one character on (``y``)."""
    ids = np.array([chars.index(c) for c in text], dtype=np.int64)
    starts = np.arange(len(ids) - context)
    x = ids[starts[:, None] + np.arange(context)]
    return {"x": x, "y": ids[starts[:, None] + np.arange(1, context + 1)]}


def unigram_entropy(text: str) -> float:
    """Entropy in nats of the characters' frequencies: the loss of the best model that ignores the context."""
    counts = np.unique(np.frombuffer(text.encode("utf-8"), dtype=np.uint8), return_counts=True)[1]
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


# ----------------------------------------------------------------- model ---


def network(chars: int, context: int = 32, features: int = 16, heads: int = 2, blocks: int = 2, hidden: int = 32,
            dropout: float = 0.0, seed: int = 0):
    """The language model: ``(graph, loss, logits)``; inputs ``x`` and ``y`` are ``(batch, context)`` character ids."""
    rng = np.random.default_rng(seed)
    g = dg.Graph("tiny transformer")
    x = g.input("x", shape=(None, context), dtype="int64")
    y = g.input("y", shape=(None, context), dtype="int64")
    training = g.input("training", shape=(), dtype="int64") if dropout else None
    h = dg.nn.embedding(x, chars, features, name="chars", init="normal", rng=rng)
    with g.scope("positions"):
        h = h + g.param("table", (0.01 * rng.standard_normal((context, features))).astype(np.float32))
    for i in range(1, blocks + 1):
        h = dg.nn.transformer_block(h, heads, hidden=hidden, causal=True, dropout=dropout, training=training,
                                    name=f"block{i}", rng=rng)
    logits = dg.nn.dense(dg.nn.layer_norm(h, name="norm"), chars, name="head", rng=rng)
    return g, dg.nn.cross_entropy(logits, y), logits


def build(batch: int = 8, seed: int = 0) -> dg.Result:
    """A backward pass of the untrained model on ``batch`` windows of the text (``dagrad render`` draws it)."""
    text = load_text()
    chars = vocabulary(text)
    data = windows(text, 32, chars)
    g, loss, _ = network(len(chars), seed=seed)
    return g.backward(loss, {"x": data["x"][:batch], "y": data["y"][:batch]})


# -------------------------------------------------------------- sampling ---


def sample(g: dg.Graph, logits: dg.Tensor, prompt: str, length: int, chars: str, *, temperature: float = 0.8,
           seed: int = 0) -> str:
    """``length`` characters after ``prompt`` (at least the model's context long), one at a time.

    Each step feeds the last ``context`` characters and draws the next one from
    the softmax of the last position's logits divided by ``temperature``.
    """
    context = g.node("x").shape[1]
    if len(prompt) < context:
        raise ValueError(f"the prompt must be at least {context} characters long, not {len(prompt)}")
    rng = np.random.default_rng(seed)
    plan = g.compile(logits)
    ids = [chars.index(c) for c in prompt]
    for _ in range(length):
        window = np.array([ids[-context:]], dtype=np.int64)
        last = plan.run({"x": window}).value(logits)[0, -1] / temperature
        p = np.exp(last - last.max())
        ids.append(int(rng.choice(len(chars), p=p / p.sum())))
    return "".join(chars[i] for i in ids[len(prompt):])


# ------------------------------------------------------------------ main ---


def main(epochs: int = 12, batch_size: int = 32, lr: float = 1e-2, limit: Optional[int] = None, seed: int = 0,
         progress: Optional[bool] = None, sample_length: int = 300) -> dict:
    """Train, report the loss against the unigram baseline, and sample.

    ``limit`` trains on the first ``limit`` windows only (for quick tests).
    Returns the losses, the baseline, the parameter count, the seconds spent
    training and the sampled text.
    """
    text = load_text()
    chars = vocabulary(text)
    data = windows(text, 32, chars)
    train = {name: a[:limit] for name, a in data.items()}
    g, loss, logits = network(len(chars), seed=seed)
    parameters = sum(v.size for v in g.params.values())
    baseline = unigram_entropy(text)
    first = float(g.forward(loss, {k: a[:256] for k, a in train.items()}).value(loss))
    steps = epochs * math.ceil(len(train["x"]) / batch_size)
    optimizer = dg.optim.AdamW(g, lr=dg.optim.cosine(lr, total_steps=steps, warmup=min(100, steps // 10)),
                               weight_decay=0.01, clip_norm=1.0)
    print(f"{len(text)} characters, {len(chars)} distinct; {parameters} parameters; "
          f"unigram baseline {baseline:.3f} nats, untrained loss {first:.3f}")

    started = time.perf_counter()
    history = dg.fit(g, loss, train, optimizer, epochs, batch_size, seed=seed, progress=progress)
    seconds = time.perf_counter() - started
    final = float(history.epochs[-1]["loss"])             # the last epoch's mean over its steps
    print(f"loss {final:.3f} nats after {len(history.steps)} steps ({seconds:.0f} s): "
          f"{baseline - final:.3f} below the unigram baseline")

    prompt = text[:32]
    written = sample(g, logits, prompt, sample_length, chars, seed=seed) if sample_length else ""
    if written:
        print(f"sampled after {prompt!r}:\n{written}")
    return {"loss": final, "untrained_loss": first, "baseline": baseline, "parameters": parameters,
            "seconds": seconds, "steps": len(history.steps), "sample": written, "history": history}


if __name__ == "__main__":
    main(epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 12)
