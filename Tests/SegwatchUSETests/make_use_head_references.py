"""A second USE head parity fixture, kept in the repository because it is small (~20 KB): other
sizes than the shared one (E 12, CLIP 20 wide with 3 levels, DINOv2 10 wide with 1 level, 7
segments, 5 texts), made by the shared fixtures' own script:

    PYTHONPATH=<transformers 5.24.0> ~/.cache/segwatch-peers/venv/bin/python \
        Tests/SegwatchUSETests/make_use_head_references.py
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "make")))

import use_fixtures  # noqa: E402

out = os.path.join(HERE, "small_head")
use_fixtures.make_head(out, seed=1207, E=12, Dc=20, Dd=10, Lc=3, Ld=1, B=7, U=5, lr=3e-3, wd=0.1)
os.remove(os.path.join(out, "README.md"))
