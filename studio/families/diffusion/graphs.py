"""The diffusion family's interactive graph: one epsilon prediction, eps(x, t)."""

from __future__ import annotations

from torch import nn

from studio.engine.graphs import GraphSpec, InputSpec


class _Eps(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t):
        return self.unet(x, t)


def diffusion_graphs(model) -> dict[str, GraphSpec]:
    cfg = model.cfg
    shape = (1, cfg.channels, cfg.image_size, cfg.image_size)
    # A sampler calls eps with the same shapes hundreds of times: worth a CUDA graph on a GPU.
    return {"eps": GraphSpec("eps", _Eps(model), (InputSpec("x", shape), InputSpec("t", (1,))), ("eps",),
                             cuda_graph=True)}
