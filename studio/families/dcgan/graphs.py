"""The DCGAN's interactive graph: generate z -> image in [0, 1]."""

from __future__ import annotations

from torch import nn

from studio.engine.graphs import GraphSpec, InputSpec


class _Generate(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, z):
        return (self.generator(z) + 1.0) * 0.5


def dcgan_graphs(model) -> dict[str, GraphSpec]:
    return {"generate": GraphSpec("generate", _Generate(model), (InputSpec("z", (1, model.cfg.z_dim)),), ("image",))}
