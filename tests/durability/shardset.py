"""Two shard clusters and a coordinator on loopback (unix sockets), used by shards.py (the test)
and bench/shards.py (the benchmark): a hash-partitioned parent whose partitions are two
postgres_fdw foreign tables (one per shard) and, optionally, one local table."""
import io
import os

import numpy as np

from cluster import Cluster

# track_activity_query_size: the test reads the whole pipelined message a shard received
SETTINGS = {"shared_buffers": "256MB", "maintenance_work_mem": "1GB", "max_connections": 40,
            "track_activity_query_size": 65536}


def clustered(n, dim, seed, centers=64, latent=None):
    """Unit vectors around random centres: a neighbourhood structure (uniform random data in many
    dimensions has none), so recall numbers mean something. With `latent`, the spread around the
    centres lies mostly in a shared `latent`-dimensional subspace, as in real embeddings (whose
    intrinsic dimension is far below their width); without it the spread is isotropic (hard)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, dim)).astype(np.float32)
    if latent:
        basis = rng.standard_normal((latent, dim)).astype(np.float32)
        spread = 0.6 * rng.standard_normal((n, latent)).astype(np.float32) @ basis
        x = c[rng.integers(0, centers, n)] + spread + 0.1 * rng.standard_normal((n, dim)).astype(np.float32)
    else:
        x = c[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vec_text(row):
    return "[" + ",".join(f"{x:.6g}" for x in row) + "]"


class ShardSet:
    def __init__(self, base_port, root="/tmp/vsag-shards", n_shards=2):
        self.coord = Cluster(f"{root}-coord", base_port)
        self.shards = [Cluster(f"{root}-s{i + 1}", base_port + 1 + i) for i in range(n_shards)]

    def start(self):
        for c in [self.coord] + self.shards:
            c.init(settings=SETTINGS).start()
        return self

    def stop(self):
        for c in [self.coord] + self.shards:
            c.stop()

    def create(self, dim, local_partition=True, opts="m = 16, ef_construction = 64", table="items"):
        """Schema on all nodes: the parent `table` on the coordinator (HASH(id) over the shards' foreign
        tables plus a local partition), `single` with every row for reference, vsag on all."""
        for s in self.shards:
            with s.connect() as c:
                c.execute("CREATE EXTENSION vsag")
                c.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, note text, v vector({dim}))")
        parts = len(self.shards) + (1 if local_partition else 0)
        with self.coord.connect() as c:
            c.execute("SET client_min_messages = warning")
            c.execute("CREATE EXTENSION vsag")
            c.execute("CREATE EXTENSION postgres_fdw")
            c.execute("CREATE EXTENSION vsag_shards CASCADE")
            c.execute(f"CREATE TABLE single (id bigint PRIMARY KEY, note text, v vector({dim}))")
            c.execute(f"CREATE TABLE {table} (id bigint NOT NULL, note text, v vector({dim})) PARTITION BY HASH (id)")
            for i, s in enumerate(self.shards):
                c.execute(f"CREATE SERVER shard{i + 1} FOREIGN DATA WRAPPER postgres_fdw OPTIONS "
                          f"(host '{s.root}', port '{s.port}', dbname 'postgres', extensions 'vsag', "
                          f"async_capable 'true', batch_size '1000')")
                c.execute(f"CREATE USER MAPPING FOR postgres SERVER shard{i + 1} OPTIONS (user 'postgres')")
                # the remote table is `table`, the local partition name differs: table_name maps it
                c.execute(f"CREATE FOREIGN TABLE {table}_s{i + 1} PARTITION OF {table} "
                          f"FOR VALUES WITH (MODULUS {parts}, REMAINDER {i}) SERVER shard{i + 1} "
                          f"OPTIONS (table_name '{table}')")
            if local_partition:
                c.execute(f"CREATE TABLE {table}_local PARTITION OF {table} "
                          f"FOR VALUES WITH (MODULUS {parts}, REMAINDER {parts - 1})")
        self.table, self.opts, self.local = table, opts, local_partition
        return self

    def load(self, data, also=()):
        """COPY every row into the partitioned parent (routed to the shards through postgres_fdw),
        into `single` and into the tables named in `also`."""
        buf = io.StringIO()
        for i, row in enumerate(data):
            buf.write(f"{i}\trow {i}\t{vec_text(row)}\n")
        text = buf.getvalue()
        with self.coord.connect() as c, c.cursor() as cur:
            for t in (self.table, "single") + tuple(also):
                with cur.copy(f"COPY {t} (id, note, v) FROM STDIN") as cp:
                    cp.write(text)

    def index(self, ops="vector_cosine_ops"):
        """vsag indexes on every partition and on `single` (same options everywhere)."""
        for s in self.shards:
            with s.connect() as c:
                c.execute(f"CREATE INDEX {self.table}_v_idx ON {self.table} USING vsag (v {ops}) WITH ({self.opts})")
                c.execute(f"ANALYZE {self.table}")
        with self.coord.connect() as c:
            if self.local:
                c.execute(f"CREATE INDEX {self.table}_local_v_idx ON {self.table}_local USING vsag (v {ops}) "
                          f"WITH ({self.opts})")
            c.execute(f"CREATE INDEX single_v_idx ON single USING vsag (v {ops}) WITH ({self.opts})")
            c.execute(f"ANALYZE {self.table}")
            c.execute("ANALYZE single")
