"""The results database (SQLite): runs, cells, metrics, counters, environment.

A file that exists is opened only if it is an rtlab database of a version
this code reads; anything else (not SQLite, a corrupt file, another
program's SQLite file, a newer schema) is refused with DatabaseError and
left untouched: it is checked read-only before any write.

Version 2 added runs.side ("base" / "head" for the runs of `rtlab compare`,
null otherwise); a version 1 file opened for writing gains the column (an
ALTER TABLE that keeps every row), opened read-only it reads as side null.

Version 3 added cells.gogc and cells.godebug, the GOGC and GODEBUG a cell's
runs had ("" when unset), to the cell's identity. An older file opened for
writing gets them by rebuilding the cells table with the wider UNIQUE key
(every cell keeps its id, both columns ""); read-only they read as "".
"""
import datetime
import json
import os
import sqlite3

APP = "rtlab"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

CELLS = """
CREATE TABLE cells (
  cell_id INTEGER PRIMARY KEY,
  workload TEXT NOT NULL, impl TEXT NOT NULL, variant TEXT NOT NULL,
  gomaxprocs INTEGER NOT NULL, params_json TEXT NOT NULL,
  gogc TEXT NOT NULL DEFAULT '', godebug TEXT NOT NULL DEFAULT '',   -- '' when unset
  UNIQUE (workload, impl, variant, gomaxprocs, params_json, gogc, godebug)
);
"""

SCHEMA = CELLS + """
CREATE TABLE rtlab_schema (app TEXT NOT NULL, version INTEGER NOT NULL, created TEXT NOT NULL);
CREATE TABLE environment (
  env_id INTEGER PRIMARY KEY,
  fingerprint TEXT NOT NULL UNIQUE,
  hostname TEXT, kernel TEXT, cpu_model TEXT, cores INTEGER, governor TEXT,
  git_commit TEXT, git_dirty INTEGER, compiler TEXT, go_version TEXT, python TEXT,
  extra_json TEXT
);
CREATE TABLE runs (
  run_id INTEGER PRIMARY KEY,
  uuid TEXT NOT NULL UNIQUE,
  session TEXT NOT NULL,
  cell_id INTEGER NOT NULL REFERENCES cells(cell_id),
  env_id INTEGER NOT NULL REFERENCES environment(env_id),
  rep INTEGER NOT NULL, warmup INTEGER NOT NULL,
  status TEXT NOT NULL,            -- ok | crashed | timeout | bad_json | bad_record | build_failed
  error TEXT,
  started_at TEXT NOT NULL, duration_s REAL,
  shard TEXT, command TEXT, stderr_tail TEXT,
  record_json TEXT,                -- the workload's JSON record (null unless parsed)
  side TEXT                        -- base | head (rtlab compare), else null
);
CREATE TABLE metrics (
  run_id INTEGER NOT NULL REFERENCES runs(run_id), name TEXT NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (run_id, name)
);
CREATE TABLE counters (
  run_id INTEGER NOT NULL REFERENCES runs(run_id), name TEXT NOT NULL,
  value REAL, supported INTEGER NOT NULL, error TEXT,
  PRIMARY KEY (run_id, name)
);
CREATE INDEX runs_cell ON runs(cell_id);
"""

ENV_FIELDS = ("hostname", "kernel", "cpu_model", "cores", "governor", "git_commit", "git_dirty",
              "compiler", "go_version", "python")


class DatabaseError(Exception):
    pass


def _check_existing(path):
    """Raises DatabaseError unless path is an rtlab database we can read."""
    with open(path, "rb") as f:
        head = f.read(16)
    if head != b"SQLite format 3\x00":
        raise DatabaseError(f"{path}: not an SQLite database (corrupt or foreign file); refusing to use it")
    try:
        con = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "rtlab_schema" not in tables:
                raise DatabaseError(
                    f"{path}: an SQLite database but not an rtlab one (no rtlab_schema table); refusing to use it")
            row = con.execute("SELECT app, version FROM rtlab_schema").fetchone()
            if row is None or row[0] != APP:
                raise DatabaseError(f"{path}: rtlab_schema has no rtlab row; refusing to use it")
            if row[1] not in READABLE_VERSIONS:
                raise DatabaseError(f"{path}: rtlab database schema version {row[1]}, this rtlab reads "
                                    f"{', '.join(map(str, READABLE_VERSIONS))}")
            missing = {"environment", "cells", "runs", "metrics", "counters"} - tables
            if missing:
                raise DatabaseError(f"{path}: rtlab database lacks tables {sorted(missing)}; refusing to use it")
            ok = con.execute("PRAGMA quick_check").fetchone()
            if not ok or ok[0] != "ok":
                raise DatabaseError(f"{path}: database is corrupt ({ok[0] if ok else '?'}); refusing to use it")
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise DatabaseError(f"{path}: corrupt SQLite database ({e}); refusing to use it")


class Database:
    def __init__(self, path, create=True, readonly=False):
        self.path = path
        exists = os.path.exists(path) and os.path.getsize(path) > 0
        if exists:
            _check_existing(path)
        elif not create:
            raise DatabaseError(f"{path}: no such database")
        elif os.path.exists(path) and not os.path.isfile(path):
            raise DatabaseError(f"{path}: not a regular file")
        if readonly:
            self.con = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        else:
            d = os.path.dirname(os.path.abspath(path))
            os.makedirs(d, exist_ok=True)
            self.con = sqlite3.connect(path)
        self.con.row_factory = sqlite3.Row
        if not exists and not readonly:
            with self.con:
                self.con.executescript(SCHEMA)
                self.con.execute("INSERT INTO rtlab_schema VALUES (?, ?, ?)",
                                 (APP, VERSION, datetime.datetime.utcnow().isoformat() + "Z"))
        self.has_side = "side" in self._columns("runs")
        self.has_runtime_env = "gogc" in self._columns("cells")
        if not readonly and not (self.has_side and self.has_runtime_env):
            self._upgrade()

    def _columns(self, table):
        return {r[1] for r in self.con.execute(f"PRAGMA table_info({table})")}

    def _upgrade(self):
        """Brings a version 1 or 2 file to VERSION in one transaction (see the file comment)."""
        with self.con:
            self.con.execute("BEGIN")
            if not self.has_side:
                self.con.execute("ALTER TABLE runs ADD COLUMN side TEXT")
            if not self.has_runtime_env:
                # SQLite's procedure for changing a table's constraints: a new
                # table, the rows copied, the old one dropped, the new one renamed.
                self.con.execute(CELLS.replace("CREATE TABLE cells (", "CREATE TABLE cells_new ("))
                self.con.execute("INSERT INTO cells_new (cell_id, workload, impl, variant, gomaxprocs, params_json)"
                                 " SELECT cell_id, workload, impl, variant, gomaxprocs, params_json FROM cells")
                self.con.execute("DROP TABLE cells")
                self.con.execute("ALTER TABLE cells_new RENAME TO cells")
            self.con.execute("UPDATE rtlab_schema SET version=?", (VERSION,))
        self.has_side = self.has_runtime_env = True

    def cell_env_columns(self):
        """The select list of a cell's GOGC and GODEBUG (constant "" in an older file)."""
        return "c.gogc, c.godebug" if self.has_runtime_env else "'' AS gogc, '' AS godebug"

    def close(self):
        self.con.close()

    # --- writing ---
    def env_id(self, env):
        fp = json.dumps({k: env.get(k) for k in ENV_FIELDS}, sort_keys=True)
        row = self.con.execute("SELECT env_id FROM environment WHERE fingerprint=?", (fp,)).fetchone()
        if row:
            return row[0]
        extra = {k: v for k, v in env.items() if k not in ENV_FIELDS}
        cur = self.con.execute(
            "INSERT INTO environment (fingerprint, %s, extra_json) VALUES (?, %s, ?)"
            % (", ".join(ENV_FIELDS), ", ".join("?" for _ in ENV_FIELDS)),
            (fp, *[env.get(k) for k in ENV_FIELDS], json.dumps(extra, sort_keys=True)))
        return cur.lastrowid

    def cell_id(self, workload, impl, variant, gomaxprocs, params, gogc=None, godebug=None):
        key = (workload, impl, variant, gomaxprocs, json.dumps(params, sort_keys=True), gogc or "", godebug or "")
        row = self.con.execute(
            "SELECT cell_id FROM cells WHERE workload=? AND impl=? AND variant=? AND gomaxprocs=? AND params_json=?"
            " AND gogc=? AND godebug=?", key).fetchone()
        if row:
            return row[0]
        return self.con.execute(
            "INSERT INTO cells (workload, impl, variant, gomaxprocs, params_json, gogc, godebug)"
            " VALUES (?,?,?,?,?,?,?)", key).lastrowid

    def add_run(self, *, uuid, session, cell, env, rep, warmup, status, error, started_at, duration_s,
                shard=None, command=None, stderr_tail=None, record=None, metrics=None, counters=None,
                side=None):
        """Stores one run (and its metrics and counters) in one transaction."""
        with self.con:
            cid = self.cell_id(*cell)
            eid = self.env_id(env)
            rid = self.con.execute(
                "INSERT INTO runs (uuid, session, cell_id, env_id, rep, warmup, status, error, started_at,"
                " duration_s, shard, command, stderr_tail, record_json, side)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (uuid, session, cid, eid, rep, int(warmup), status, error, started_at, duration_s, shard,
                 command, stderr_tail, json.dumps(record) if record is not None else None, side)).lastrowid
            for k, v in (metrics or {}).items():
                self.con.execute("INSERT INTO metrics VALUES (?,?,?)", (rid, k, v))
            for k, v in (counters or {}).items():
                if v == "unsupported" or v is None:
                    err = None
                    info = ((record or {}).get("counter_info") or {}).get(k) or {}
                    err = info.get("error")
                    self.con.execute("INSERT INTO counters VALUES (?,?,?,?,?)", (rid, k, None, 0, err))
                else:
                    self.con.execute("INSERT INTO counters VALUES (?,?,?,?,?)", (rid, k, float(v), 1, None))
        return rid

    def merge_from(self, other_path):
        """Copies every run of another rtlab database not already here (by uuid).
        Returns (added, skipped)."""
        src = Database(other_path, create=False, readonly=True)
        added = skipped = 0
        try:
            with self.con:
                for r in src.con.execute(
                        "SELECT r.*, c.workload, c.impl, c.variant, c.gomaxprocs, c.params_json, "
                        f"{src.cell_env_columns()} FROM runs r JOIN cells c USING (cell_id)").fetchall():
                    if self.con.execute("SELECT 1 FROM runs WHERE uuid=?", (r["uuid"],)).fetchone():
                        skipped += 1
                        continue
                    e = src.con.execute("SELECT * FROM environment WHERE env_id=?", (r["env_id"],)).fetchone()
                    env = {k: e[k] for k in ENV_FIELDS}
                    env.update(json.loads(e["extra_json"] or "{}"))
                    cid = self.cell_id(r["workload"], r["impl"], r["variant"], r["gomaxprocs"],
                                       json.loads(r["params_json"]), r["gogc"], r["godebug"])
                    eid = self.env_id(env)
                    rid = self.con.execute(
                        "INSERT INTO runs (uuid, session, cell_id, env_id, rep, warmup, status, error, started_at,"
                        " duration_s, shard, command, stderr_tail, record_json, side)"
                        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (r["uuid"], r["session"], cid, eid, r["rep"], r["warmup"], r["status"], r["error"],
                         r["started_at"], r["duration_s"], r["shard"], r["command"], r["stderr_tail"],
                         r["record_json"], r["side"] if src.has_side else None)).lastrowid
                    for m in src.con.execute("SELECT name, value FROM metrics WHERE run_id=?", (r["run_id"],)):
                        self.con.execute("INSERT INTO metrics VALUES (?,?,?)", (rid, m[0], m[1]))
                    for c in src.con.execute("SELECT name, value, supported, error FROM counters WHERE run_id=?",
                                             (r["run_id"],)):
                        self.con.execute("INSERT INTO counters VALUES (?,?,?,?,?)", (rid, *tuple(c)))
                    added += 1
        finally:
            src.close()
        return added, skipped

    # --- reading ---
    def runs(self, status="ok", include_warmup=False):
        """Rows of runs joined with their cell (dicts), oldest first."""
        side = "r.side" if self.has_side else "NULL AS side"
        q = ("SELECT r.run_id, r.uuid, r.session, r.rep, r.warmup, r.status, r.error, r.started_at, r.shard,"
             f" r.record_json, r.env_id, {side}, e.git_commit, e.git_dirty,"
             f" c.cell_id, c.workload, c.impl, c.variant, c.gomaxprocs, c.params_json, {self.cell_env_columns()}"
             " FROM runs r JOIN cells c USING (cell_id) JOIN environment e USING (env_id) WHERE 1=1")
        args = []
        if status is not None:
            q += " AND r.status=?"
            args.append(status)
        if not include_warmup:
            q += " AND r.warmup=0"
        q += " ORDER BY r.run_id"
        return [dict(r) for r in self.con.execute(q, args)]

    def failures(self):
        return [dict(r) for r in self.con.execute(
            "SELECT r.run_id, r.status, r.error, r.warmup, c.workload, c.impl, c.variant, c.gomaxprocs,"
            f" c.params_json, {self.cell_env_columns()} FROM runs r JOIN cells c USING (cell_id)"
            " WHERE r.status != 'ok' ORDER BY r.run_id")]

    def cell_keys(self):
        """The keys (runner.Cell.key) of the cells that have runs."""
        return {tuple(r) for r in self.con.execute(
            "SELECT DISTINCT c.workload, c.impl, c.variant, c.gomaxprocs, c.params_json, "
            f"{self.cell_env_columns()} FROM runs JOIN cells c USING (cell_id)")}

    def metrics_by_run(self, status="ok"):
        """{run_id: {metric: value}} of every run with this status, in one query."""
        out = {}
        for rid, name, value in self.con.execute(
                "SELECT m.run_id, m.name, m.value FROM metrics m JOIN runs r USING (run_id) WHERE r.status=?",
                (status,)):
            out.setdefault(rid, {})[name] = value
        return out

    def counters_by_run(self, status="ok"):
        """{run_id: {event: value or "unsupported"}} of every run with this status, in one query."""
        out = {}
        for rid, name, value, supported in self.con.execute(
                "SELECT k.run_id, k.name, k.value, k.supported FROM counters k JOIN runs r USING (run_id)"
                " WHERE r.status=?", (status,)):
            out.setdefault(rid, {})[name] = value if supported else "unsupported"
        return out

    def environments(self):
        return [dict(r) for r in self.con.execute("SELECT * FROM environment ORDER BY env_id")]
