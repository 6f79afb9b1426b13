"""A second DINOv2 parity fixture, kept in the repository because it is small (~40 KB): the
variants the shared fixture does not cover. A Dinov2WithRegistersModel (2 registers: their
positions are resized with antialias=True) with SwiGLU feed-forwards (ViT-g's), other widths,
a 4x4 position grid shrunk, grown and kept, and level 0 (the embeddings).

Made by the shared fixtures' own script (../shared/fixtures/make/use_fixtures.py, transformers
5.24.0), with use_swiglu_ffn forced on, which its command line does not offer:

    PYTHONPATH=<transformers 5.24.0> ~/.cache/segwatch-peers/venv/bin/python \
        Tests/SegwatchDINOv2Tests/make_dinov2_references.py
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
MAKE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "make"))
sys.path.insert(0, MAKE)

import transformers  # noqa: E402

for cls in (transformers.Dinov2Config, transformers.Dinov2WithRegistersConfig):
    def init(self, *args, __original=cls.__init__, **kwargs):
        kwargs["use_swiglu_ffn"] = True
        __original(self, *args, **kwargs)
    cls.__init__ = init

import use_fixtures  # noqa: E402

images = os.path.join(MAKE, "..", "images")
out = os.path.join(HERE, "registers_swiglu")
use_fixtures.make_dinov2(out, seed=2612, registers=2, hidden=12, layers=2, heads=3, image_size=56,
                         images=[(os.path.join(images, "bus.png"), (42, 70)),
                                 (os.path.join(images, "street_car.png"), (56, 56)),
                                 (os.path.join(images, "neon_sign.png"), (84, 28))],
                         levels=(0, 2))
os.remove(os.path.join(out, "README.md"))
