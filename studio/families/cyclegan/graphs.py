"""The CycleGAN's graphs: one per direction, image in [0, 1] -> translated image in [0, 1].

Both are fully convolutional: batch, height and width are dynamic (sides multiples of 4), so
one ONNX file translates a 32x32 digit, a batch of them or a model-sized tile of a large picture.
"""

from __future__ import annotations

from torch import nn

from studio.engine.graphs import GraphSpec, InputSpec, spatial

DIRECTIONS = {"AtoB": "G_AB", "BtoA": "G_BA"}  # direction -> graph (and generator) name


class _Translate(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, image):
        return (self.generator(image * 2.0 - 1.0) + 1.0) * 0.5


def cyclegan_graphs(model) -> dict[str, GraphSpec]:
    cfg = model.cfg
    shape = (1, cfg.channels, cfg.image_size, cfg.image_size)
    return {name: GraphSpec(name, _Translate(getattr(model, name)), (InputSpec("image", shape, dynamic=spatial()),),
                            ("translated",))
            for name in DIRECTIONS.values()}
