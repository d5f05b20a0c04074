"""core.domain.new_id: ids from a buffer of os.urandom bytes, never the same one twice -- not
across 100,000 ids, and not in a forked child (its buffer starts empty)."""

from __future__ import annotations

import os
import re

from core.domain import new_id


def test_ids_have_the_prefix_and_96_random_bits_and_do_not_repeat() -> None:
    ids = [new_id("run") for _ in range(100_000)]
    assert all(re.fullmatch(r"run_[0-9a-f]{24}", i) for i in ids[:100])
    assert len(set(ids)) == len(ids)


def test_a_forked_child_does_not_hand_out_the_parents_next_ids() -> None:
    new_id("step")  # the parent's buffer is filled: a child copies it at fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.write(write, " ".join(new_id("run") for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_id("run") for _ in range(5)]
    assert len(child) == 5
    assert not set(child) & set(parent)
