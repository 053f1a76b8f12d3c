"""``dagrad demo``: the main job, run by ``make demo``.

Trains an MLP on scikit-learn's handwritten digits (1,797 8x8 images shipped
with scikit-learn, no download) on a fixed seed, reports held-out accuracy,
saves the model, draws the gradient flow at the first and the last training
step (and the last one as an interactive page that plays backpropagation),
plots how the gradients changed over training, and prints how large each
layer's gradients were at both steps.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..train import Callback
from .arguments import non_negative_int, positive_float, positive_int

TABLE_NAME = "gradient-norms.txt"
MODEL_NAME = "digits.dagrad"


def add(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train an MLP on the digits data set and draw its gradient flow at the first and last step",
    )
    p.add_argument("--out", type=_directory, default="out", metavar="DIR",
                   help="directory for the model, diagrams and tables; made if missing (default: ./out)")
    p.add_argument("--epochs", type=positive_int, default=30, help="passes over the training set (default: 30)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="examples per step (default: 32)")
    p.add_argument("--hidden", type=_sizes, default=[128, 64], metavar="SIZES",
                   help="hidden layer sizes, comma-separated (default: 128,64)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default: 0.001)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the train/test split, the initial weights and the shuffling (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (it is also off when not on a terminal)")
    p.add_argument("--workers", type=non_negative_int, default=0, metavar="N",
                   help="train data-parallel on a Dask cluster of N worker processes on this machine, started and "
                        "stopped by the demo (needs pip install 'dagrad[dask]'; default: 0, train in this process)")
    p.set_defaults(func=run)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive layer sizes separated by commas, like 128,64; got {text!r}")
    return sizes


def _directory(text: str) -> str:
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} exists and is not a directory")
    return text


def run(args: argparse.Namespace) -> int:
    report = main(
        out=args.out, epochs=args.epochs, batch_size=args.batch_size, hidden=args.hidden, lr=args.lr, seed=args.seed,
        progress=False if args.no_progress else None, workers=args.workers,
    )
    if report["test_accuracy"] <= 0.5:
        print(f"dagrad demo: held-out accuracy {report['test_accuracy']:.1%} is no better than 50%: the network did "
              f"not learn (try more --epochs or another --lr)", file=sys.stderr)
        return 1
    return 0


def main(
    out: str = "out",
    epochs: int = 30,
    batch_size: int = 32,
    hidden: Optional[list] = None,
    lr: float = 1e-3,
    seed: int = 0,
    progress: Optional[bool] = None,
    print_fn=print,
    workers: int = 0,
) -> dict:
    """Run the demo; return what it measured and wrote (``test_accuracy``, ``seconds``, ``files``...).

    With ``workers``, training runs data-parallel on a Dask ``LocalCluster``
    of that many worker processes, started here and stopped after training;
    the result is the same training, so the same accuracy to rounding.
    """
    import dagrad as dg
    from dagrad.data import digits

    started = time.perf_counter()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    hidden = [128, 64] if hidden is None else list(hidden)

    data = digits(test_fraction=0.25, seed=seed)
    n_train, n_test = len(data["y_train"]), len(data["y_test"])
    sizes = [64, *hidden, 10]
    print_fn(f"digits: {n_train} training and {n_test} held-out 8x8 images; MLP {'-'.join(map(str, sizes))}, "
             f"ReLU, Adam lr={lr:g}, batch {batch_size}, {epochs} epochs, seed {seed}"
             + (f", on a Dask cluster of {workers} worker processes" if workers else ""))

    g = dg.Graph("digits-mlp")
    x = g.input("x", shape=(None, 64), dtype="float32")
    y = g.input("y", shape=(None,), dtype="int64")
    logits = dg.nn.mlp(x, [*hidden, 10], "relu", rng=seed)
    loss = dg.nn.cross_entropy(logits, y)
    accuracy = dg.train.accuracy(logits, y)

    snapshots = FirstAndLastStep()
    with _cluster(workers) as client:
        history = dg.fit(
            g, loss, {x: data["X_train"], y: data["y_train"]}, dg.optim.Adam(g, lr=lr), epochs, batch_size,
            validation={x: data["X_test"], y: data["y_test"]}, metrics=accuracy, seed=seed, drop_last=True,
            callbacks=[snapshots], progress=progress, log=print_fn, client=client,
        )
    test = dg.train.evaluate(g, {x: data["X_test"], y: data["y_test"]}, loss=loss, metrics=accuracy)
    trained = time.perf_counter() - started

    files, labels, notes = [], {}, []
    # One colour scale for both diagrams, so the shrinking gradients show as paler boxes.
    norms = [float(np.linalg.norm(gr)) for r in snapshots.results.values() for gr in r.grads.values()]
    norms = [n for n in norms if n > 0 and np.isfinite(n)]
    grad_range = (min(norms), max(norms)) if norms else None
    for step, result in sorted(snapshots.results.items()):
        path = out_dir / f"digits-step{step:05d}.svg"
        which = "first" if step == 1 else "last"
        try:
            dg.render(result, path, grad_range=grad_range)
        except dg.RenderError as exc:  # no Graphviz: the rest of the demo still stands
            notes.append(f"diagram of step {step} not drawn: {exc}")
            continue
        files.append(path)
        labels[path] = f"gradient flow at step {step} ({which})"
    if snapshots.results:
        last = max(snapshots.results)
        page = out_dir / "digits-flow.html"
        dg.render(snapshots.results[last], page, grad_range=grad_range, arrows="backward")
        files.append(page)
        labels[page] = f"the same, interactive: open it in a browser and press play (step {last})"
    files += _plots(history, out_dir, labels, notes)
    model_path = out_dir / MODEL_NAME
    dg.save(g, model_path)
    reloaded = dg.load(model_path)
    reloaded_acc = dg.train.evaluate(reloaded, {"x": data["X_test"], "y": data["y_test"]},
                                     metrics=dg.train.accuracy(logits.name, "y"))["accuracy"]
    files.insert(0, model_path)

    table = gradient_table(snapshots.results, g) if snapshots.results else "(no training steps were run)\n"
    table_path = out_dir / TABLE_NAME
    _write_text(table_path, table)
    history_path = out_dir / "history.json"
    _write_text(history_path, json.dumps(history.as_dict()))
    files += [table_path, history_path]

    print_fn("")
    print_fn(f"held-out accuracy {test['accuracy']:.2%} (loss {test['loss']:.4f}) on {n_test} images, "
             f"after {history.steps[-1] if history.steps else 0} steps in {trained:.1f}s")
    same = "the same" if reloaded_acc == test["accuracy"] else "DIFFERENT"
    print_fn(f"model saved to {model_path} and loaded back: {same} accuracy, {reloaded_acc:.2%}")
    print_fn("")
    print_fn(table.rstrip("\n"))
    print_fn("")
    print_fn("files written:")
    labels.update({model_path: "the trained model (dg.load(path))", table_path: "the table above",
                   history_path: "loss and gradient norm of every parameter at every step"})
    for path in files:
        print_fn(f"  {path}  {labels.get(path, '')}".rstrip())
    for note in notes:
        print_fn(note)
    return {
        "test_accuracy": test["accuracy"], "reloaded_accuracy": reloaded_acc, "seconds": trained,
        "history": history, "files": files, "table": table,
    }


def _cluster(workers: int):
    """A client of a local Dask cluster of ``workers`` processes for the fit, or ``None`` (train here) for 0."""
    if not workers:
        return contextlib.nullcontext()
    from ..distributed import local_cluster

    return local_cluster(workers)


class FirstAndLastStep(Callback):
    """A fit callback keeping the full Result (every value and gradient) of the first and the last step."""

    def __init__(self):
        self.results: dict = {}

    def wants_full_result(self, state, step: int) -> bool:
        return step in (1, state.total_steps)

    def on_step_end(self, state, result) -> None:
        if self.wants_full_result(state, state.step):
            self.results[state.step] = result



def gradient_table(results: dict, graph) -> str:
    """Mean and max |grad| of each layer's parameters (all entries of its scope together) at the given steps."""
    steps = sorted(results)
    layers: dict[str, list[str]] = {}
    for name in graph.params:
        layers.setdefault(graph.node(name).scope or name, []).append(name)
    header = ["layer"] + [f"{what} step {s}" for s in steps for what in ("mean |grad|", "max |grad|")]
    rows = []
    for layer, names in layers.items():
        row = [layer]
        for s in steps:
            grads = [np.abs(results[s].grads[n]).ravel() for n in names if n in results[s].grads]
            flat = np.concatenate(grads) if grads else np.zeros(0)
            row += [f"{flat.mean():.3e}", f"{flat.max():.3e}"] if flat.size else ["-", "-"]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["gradient magnitude per layer (all entries of W and b), first and last training step:"]
    lines.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines) + "\n"


PLOTS = {
    "digits-grad-norms.png": ("plot_grad_norms", "each layer's gradient norm at every step (log scale)"),
    "digits-metrics.png": ("plot_metrics", "loss and accuracy per epoch, training and held-out"),
    "digits-grad-flow.png": ("plot_grad_flow", "mean and max |grad| per layer at the first and last step"),
}


def _plots(history, out_dir: Path, labels: dict, notes: list) -> list:
    """The History's plots as PNG files; without matplotlib, a note saying how to get them."""
    from ..errors import RenderError

    if "matplotlib.pyplot" not in sys.modules:  # a command writes files: no window, whatever the desktop
        try:
            import matplotlib

            matplotlib.use("Agg")
        except ImportError:
            pass
    written = []
    for name, (method, label) in PLOTS.items():
        try:
            ax = getattr(history, method)()
        except RenderError as exc:
            notes.append(f"no training plots: {exc}")
            break
        path = out_dir / name
        ax.figure.savefig(path, dpi=110)
        import matplotlib.pyplot as plt

        plt.close(ax.figure)
        written.append(path)
        labels[path] = label
    return written


def _write_text(path: Path, text: str) -> None:
    """Write whole or not at all, so an interrupted run leaves no half-written file."""
    from ..files import atomic_write

    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
