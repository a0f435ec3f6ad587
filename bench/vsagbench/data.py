"""Datasets: fvecs/ivecs files, a clustered synthetic generator with exact ground truth,
and fast binary COPY encoding (pgvector's and vsag's shared wire format)."""
import os
import struct

import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    if raw.size == 0:
        return np.zeros((0, 0), dtype=dtype)
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        raise ValueError(f"{path}: rows of differing dimension")
    return rows[:, 1:].copy().view(dtype)


def read_fvecs(path):
    return read_vecs(path, np.float32)


def read_ivecs(path):
    return read_vecs(path, np.int32)


class Dataset:
    def __init__(self, name, base, queries, gt, metric):
        self.name, self.base, self.queries, self.gt, self.metric = name, base, queries, gt, metric

    @property
    def dim(self):
        return self.base.shape[1]


def find_prefix(spec, dirs):
    """The fvecs path prefix for `spec`: `spec` itself if `spec`.base.fvecs exists, else the
    first of `dirs` holding `spec`.base.fvecs; None when there is none."""
    for prefix in [spec] + [os.path.join(d, spec) for d in dirs]:
        if os.path.exists(prefix + ".base.fvecs"):
            return prefix
    return None


def load_fvecs_dataset(prefix, metric, limit=None, nqueries=None):
    """`prefix`.base.fvecs, .query.fvecs, .gt-<metric>.ivecs. With `limit`, only the first
    `limit` base rows are used and ground truth is recomputed exactly."""
    base = read_fvecs(prefix + ".base.fvecs")
    queries = read_fvecs(prefix + ".query.fvecs")
    if nqueries:
        queries = queries[:nqueries]
    name = os.path.basename(prefix)
    if limit and limit < len(base):
        base = base[:limit]
        gt = exact_knn(base, queries, metric, 100)
        name = f"{name}[:{limit}]"
    else:
        gt = read_ivecs(f"{prefix}.gt-{metric}.ivecs")[: len(queries)]
    return Dataset(name, base, queries, gt, metric)


def synthetic(n, dim, nqueries=1000, clusters=100, seed=7, metric="l2"):
    """Gaussian clusters (like real embeddings: dense regions, uneven spread)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    scales = rng.uniform(0.2, 0.6, size=clusters).astype(np.float32)

    def draw(k):
        c = rng.integers(0, clusters, size=k)
        return (centers[c] + rng.normal(size=(k, dim)).astype(np.float32) * scales[c, None]).astype(np.float32)

    base = np.concatenate([draw(min(100_000, n - i)) for i in range(0, n, 100_000)])
    queries = draw(nqueries)
    gt = exact_knn(base, queries, metric, 100)
    return Dataset(f"synthetic-{n // 1000}k-{dim}d", base, queries, gt, metric)


def exact_knn(base, queries, metric, k):
    """Brute-force top-k ids (float32 matrix products, blocked to bound memory)."""
    k = min(k, len(base))
    out = np.empty((len(queries), k), dtype=np.int32)
    if metric == "cosine":
        b = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    else:
        b, q = base, queries
    bn = (b * b).sum(1)
    for s in range(0, len(q), 256):
        qs = q[s:s + 256]
        ip = qs @ b.T
        if metric == "l2":
            d = bn[None, :] - 2 * ip
        else:  # cosine (normalised) and inner product: larger dot is closer
            d = -ip
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.take_along_axis(d, part, 1).argsort(1)
        out[s:s + 256] = np.take_along_axis(part, order, 1)
    return out


def copy_binary(ids, vecs):
    """Binary COPY stream for a table (id integer, embedding vector)."""
    n, dim = vecs.shape
    dt = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i4"), ("l2", ">i4"),
                   ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (dim,))])
    rows = np.zeros(n, dtype=dt)
    rows["nf"], rows["l1"], rows["id"] = 2, 4, ids
    rows["l2"], rows["dim"], rows["v"] = 4 + 4 * dim, dim, vecs
    return b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + rows.tobytes() + struct.pack(">h", -1)
