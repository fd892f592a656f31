"""Figures written at the end of an experiment (matplotlib, headless)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def pca_2d(x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Projects ``x`` (and any ``others`` in the same space) on the top two principal axes of ``x``."""
    mean = x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    return [(a - mean) @ vt[:2].T for a in (x, *others)]


def plot_clusters(
    path: str | pathlib.Path,
    x: np.ndarray,
    labels: np.ndarray,
    *,
    centroids: np.ndarray | None = None,
    y: np.ndarray | None = None,
    mapping: np.ndarray | None = None,
    title: str = "",
    space: str = "data",
) -> None:
    """Writes a PNG: 2-D PCA scatter coloured by cluster, and, with ``y``, a confusion matrix.

    The confusion matrix has true classes as rows and clusters as columns, the columns ordered
    by the class each cluster is matched to (``mapping``, from Hungarian matching), so a good
    clustering shows a heavy diagonal.
    """
    k = int(labels.max()) + 1 if centroids is None else len(centroids)
    panels = 2 if y is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 6), squeeze=False)
    axes = axes[0]
    proj = pca_2d(x, *([] if centroids is None else [centroids]))
    cmap = plt.get_cmap("tab20" if k > 10 else "tab10")
    ax = axes[0]
    ax.scatter(proj[0][:, 0], proj[0][:, 1], c=labels % cmap.N, cmap=cmap, s=4, alpha=0.6,
               vmin=0, vmax=cmap.N - 1, linewidths=0)
    if centroids is not None:
        ax.scatter(proj[1][:, 0], proj[1][:, 1], c="black", marker="x", s=80, label="centroids")
        for c, (px, py) in enumerate(proj[1]):
            ax.annotate(str(c), (px, py), xytext=(4, 4), textcoords="offset points", fontsize=9,
                        weight="bold")
        ax.legend(loc="upper right")
    ax.set(title=f"Clusters (2-D PCA of the {space})", xlabel="PC 1", ylabel="PC 2")

    if y is not None:
        classes = int(y.max()) + 1
        table = np.zeros((classes, k), dtype=np.int64)
        np.add.at(table, (y, labels), 1)
        if mapping is None:
            order = np.arange(k)
        else:
            matched = np.where(mapping >= 0, mapping, classes + np.arange(k))
            order = np.argsort(matched, kind="stable")
        table = table[:, order]
        ax = axes[1]
        im = ax.imshow(table, cmap="Blues")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        if classes * k <= 400:
            for r in range(classes):
                for c in range(k):
                    v = table[r, c]
                    ax.text(c, r, str(v), ha="center", va="center", fontsize=7,
                            color="white" if v > table.max() / 2 else "black")
        ax.set_xticks(range(k), [str(c) for c in order], fontsize=8)
        ax.set_yticks(range(classes))
        ax.set(title="Confusion matrix (columns: clusters, matched order)",
               xlabel="cluster", ylabel="true class")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_training(path: str | pathlib.Path, records: list[dict], labels: np.ndarray,
                  k: int, title: str = "") -> None:
    """Writes a PNG with the training-loss curves, the evaluation curves (ACC/NMI/ARI per
    evaluation step) and the cluster-size histogram of the final labels."""
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    train = [r for r in records if "eval" not in r]
    evals = [r for r in records if "eval" in r]
    ax = axes[0]
    for phase in dict.fromkeys(r["phase"] for r in train):
        rows = [r for r in train if r["phase"] == phase]
        for name in [n for n in rows[0] if n not in ("step", "phase")]:
            ax.plot([r["step"] for r in rows], [r[name] for r in rows],
                    label=f"{phase}: {name}", lw=1)
    values = [v for r in train for n, v in r.items() if n not in ("step", "phase")]
    # Log scale unless a loss is non-positive (e.g. negative coding-rate objectives).
    ax.set(title="Training losses", xlabel="step",
           yscale="log" if values and min(values) > 0 else "symlog")
    ax.legend(fontsize=7)
    ax = axes[1]
    for name in ("acc", "nmi", "ari"):
        points = [(r["step"], r["eval"][name]) for r in evals if name in r["eval"]]
        if points:
            ax.plot(*zip(*points), marker="o", label=name.upper())
    ax.set(title="Evaluation", xlabel="step", ylim=(0, 1))
    ax.legend()
    ax = axes[2]
    sizes = np.bincount(labels, minlength=k)
    ax.bar(np.arange(k), sizes, color="tab:blue")
    ax.axhline(len(labels) / k, color="black", ls="--", lw=1, label="balanced")
    ax.set(title="Cluster sizes (final)", xlabel="cluster", ylabel="samples")
    ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
