"""tasks — Bakery's example of a real app: a release step, a web process,
a worker and a scheduled job, all from one release and one environment.

    python3 tasks.py migrate   the release command: brings the SQLite schema
                               up to date (runs once per rollout, before the
                               new version starts)
    python3 tasks.py serve     the web process: GET / lists the queue, POST /
                               enqueues a task, GET /healthz is ok once the
                               schema is current
    python3 tasks.py work      the worker: takes one task at a time (a few
                               seconds each) and finishes it on SIGTERM
    python3 tasks.py prune     the scheduled job: deletes tasks finished more
                               than an hour ago

Only the standard library. The database is $DATA_DIR/tasks.db (default: the
app's home, which Bakery makes its data directory, the one place an app may
write). SQLite lives on one node: with several nodes each has its own
database; use PostgreSQL for shared data.
"""

import http.server
import json
import os
import signal
import sqlite3
import sys
import time

# SCHEMA is the list of migrations; the schema version is its length.
SCHEMA = [
    """CREATE TABLE tasks (
           id INTEGER PRIMARY KEY,
           payload TEXT NOT NULL,
           state TEXT NOT NULL DEFAULT 'pending',
           created REAL NOT NULL)""",
    "ALTER TABLE tasks ADD COLUMN finished REAL",
    "CREATE INDEX tasks_state ON tasks (state, id)",
]

JOB_SECONDS = float(os.environ.get("JOB_SECONDS", "2"))


def db_path():
    return os.path.join(os.environ.get("DATA_DIR") or os.environ.get("HOME") or ".", "tasks.db")


def connect(path=None):
    conn = sqlite3.connect(path or db_path(), timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def version(conn):
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn):
    """Applies the migrations not yet applied; returns how many ran."""
    ran = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        for i in range(version(conn), len(SCHEMA)):
            conn.execute(SCHEMA[i])
            ran += 1
        conn.execute("PRAGMA user_version=%d" % len(SCHEMA))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ran


def enqueue(conn, payload):
    cur = conn.execute("INSERT INTO tasks (payload, created) VALUES (?, ?)", (payload, time.time()))
    return cur.lastrowid


def claim(conn):
    """Marks the oldest pending task running and returns (id, payload), or None."""
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute("SELECT id, payload FROM tasks WHERE state = 'pending' ORDER BY id LIMIT 1").fetchone()
    if row:
        conn.execute("UPDATE tasks SET state = 'running' WHERE id = ?", (row[0],))
    conn.execute("COMMIT")
    return row


def finish(conn, task_id, now=None):
    conn.execute("UPDATE tasks SET state = 'done', finished = ? WHERE id = ?", (now or time.time(), task_id))


def prune(conn, older_than=3600, now=None):
    cutoff = (now or time.time()) - older_than
    return conn.execute("DELETE FROM tasks WHERE state = 'done' AND finished < ?", (cutoff,)).rowcount


def release():
    """The release this process runs from: Bakery names the release
    directory (the working directory) after the commit."""
    return os.path.basename(os.getcwd())[:12]


def counts(conn):
    return dict(conn.execute("SELECT state, count(*) FROM tasks GROUP BY state").fetchall())


class Handler(http.server.BaseHTTPRequestHandler):
    def reply(self, code, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        conn = connect()
        try:
            if self.path == "/healthz":
                v = version(conn)
                self.reply(200 if v >= len(SCHEMA) else 503, {"schema": v, "want": len(SCHEMA)})
                return
            self.reply(200, {"tasks": counts(conn), "release": release()})
        finally:
            conn.close()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(min(length, 4096)).decode("utf-8", "replace") or "task"
        conn = connect()
        try:
            self.reply(201, {"id": enqueue(conn, payload)})
        finally:
            conn.close()

    def log_message(self, fmt, *args):
        pass


def serve():
    port = int(os.environ.get("PORT", "8080"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    # SIGTERM (a stop, the old slot after a switch): leave serve_forever
    # by an exception in this thread, exit 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("serving on port %d" % port, flush=True)
    server.serve_forever()


def work():
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    conn = connect()
    print("worker started", flush=True)
    while not stopping:
        task = claim(conn)
        if task is None:
            time.sleep(0.5)
            continue
        print("start %d %s (release %s)" % (task[0], task[1], release()), flush=True)
        time.sleep(JOB_SECONDS)  # the job's work; a SIGTERM lets it finish
        finish(conn, task[0])
        print("done %d" % task[0], flush=True)
    print("worker stopped", flush=True)


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "migrate":
        conn = connect()
        before = version(conn)
        ran = migrate(conn)
        print("schema version %d -> %d (%d migration(s))" % (before, version(conn), ran))
    elif cmd == "serve":
        serve()
    elif cmd == "work":
        work()
    elif cmd == "prune":
        print("pruned %d finished task(s)" % prune(connect()))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
