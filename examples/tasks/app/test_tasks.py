import os
import tempfile
import unittest

import tasks


class TasksTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.conn = tasks.connect(os.path.join(self.dir.name, "t.db"))

    def tearDown(self):
        self.conn.close()
        self.dir.cleanup()

    def test_migrate_is_idempotent(self):
        self.assertEqual(tasks.migrate(self.conn), len(tasks.SCHEMA))
        self.assertEqual(tasks.migrate(self.conn), 0)
        self.assertEqual(tasks.version(self.conn), len(tasks.SCHEMA))

    def test_queue(self):
        tasks.migrate(self.conn)
        first = tasks.enqueue(self.conn, "a")
        tasks.enqueue(self.conn, "b")
        self.assertEqual(tasks.claim(self.conn), (first, "a"))
        tasks.finish(self.conn, first, now=100)
        self.assertEqual(tasks.counts(self.conn), {"done": 1, "pending": 1})
        self.assertEqual(tasks.prune(self.conn, older_than=10, now=105), 0)
        self.assertEqual(tasks.prune(self.conn, older_than=10, now=200), 1)


if __name__ == "__main__":
    unittest.main()
