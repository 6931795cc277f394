"""The StyleGAN's interactive graphs: mapping z -> w, and synthesis from per-layer w and noise.

The synthesis graph takes one w per layer (``w0`` .. ``w7``) and one noise map
per layer (``noise0`` .. ``noise7``), all with a dynamic batch: style mixing,
truncation and edits are arithmetic on its inputs, and noise toggles are just
inputs (zeros turn a layer's noise off). Images come out in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from studio.engine.graphs import GraphSpec, InputSpec


class _Mapping(nn.Module):
    def __init__(self, generator):
        super().__init__()
        self.mapping = generator.mapping

    def forward(self, z):
        return self.mapping(z)


class _Synthesis(nn.Module):
    """forward(w0, ..., w{L-1}, noise0, ..., noise{L-1}) -> image in [0, 1]."""

    def __init__(self, generator):
        super().__init__()
        self.synthesis = generator.synthesis
        self.num_layers = generator.num_layers

    def forward(self, *inputs):
        n = self.num_layers
        ws = torch.stack(inputs[:n], dim=1)
        image = self.synthesis(ws, list(inputs[n:]))
        return (image.clamp(-1.0, 1.0) + 1.0) * 0.5


def _named_synthesis(generator) -> _Synthesis:
    """A synthesis module whose forward() names each input, as the exporter binds arguments by signature."""
    import inspect

    n = generator.num_layers
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
               for name in style_input_names(n) + noise_input_names(n)]
    cls = type(f"Synthesis{n}", (_Synthesis,), {})

    def forward(self, *inputs):
        return _Synthesis.forward(self, *inputs)

    forward.__signature__ = inspect.Signature(params)
    cls.forward = forward
    return cls(generator)


def style_input_names(num_layers: int) -> list[str]:
    return [f"w{i}" for i in range(num_layers)]


def noise_input_names(num_layers: int) -> list[str]:
    return [f"noise{i}" for i in range(num_layers)]


def stylegan_graphs(model) -> dict[str, GraphSpec]:
    cfg = model.cfg
    n = cfg.num_layers
    inputs = tuple(InputSpec(name, (1, cfg.w_dim)) for name in style_input_names(n))
    inputs += tuple(InputSpec(name, shape) for name, shape in
                    zip(noise_input_names(n), model.synthesis.noise_shapes(1)))
    return {
        "mapping": GraphSpec("mapping", _Mapping(model), (InputSpec("z", (1, cfg.z_dim)),), ("w",)),
        "synthesis": GraphSpec("synthesis", _named_synthesis(model), inputs, ("image",)),
    }
