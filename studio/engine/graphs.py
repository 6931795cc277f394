"""The interactive graphs of each family: the calls a panel makes on every gesture.

A graph is a torch module with named inputs and outputs. Several named inputs
(per-layer styles, per-layer noise) are the normal case, so every backend takes
and returns dicts of arrays. The same specs drive ONNX export.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]  # example shape; dim 0 is the dynamic batch
    dtype: str = "float32"


@dataclass
class GraphSpec:
    name: str
    module: "nn.Module"
    inputs: tuple[InputSpec, ...]
    outputs: tuple[str, ...]

    def example_inputs(self, batch: int = 1) -> dict[str, Any]:
        import torch

        g = torch.Generator().manual_seed(0)
        return {s.name: torch.randn((batch,) + s.shape[1:], generator=g) for s in self.inputs}


def _vae_graphs(model) -> dict[str, GraphSpec]:
    cfg = model.cfg
    return {
        "decode": GraphSpec("decode", model.decoder, (InputSpec("z", (1, cfg.latent_dim)),), ("image",)),
        "encode": GraphSpec(
            "encode", model.encoder,
            (InputSpec("image", (1, cfg.channels, cfg.image_size, cfg.image_size)),),
            ("mu", "logvar"),
        ),
    }


def _build_vae(config: dict) -> "nn.Module":
    from studio.models.vae import build_vae

    return build_vae(config)


@dataclass(frozen=True)
class Family:
    build: Callable[[dict], "nn.Module"]
    graphs: Callable[["nn.Module"], dict[str, GraphSpec]]


FAMILIES: dict[str, Family] = {
    "vae": Family(_build_vae, _vae_graphs),
    "diffusion": Family(lambda c: __import__("studio.engine.diffusion_graphs", fromlist=["_"]).build_diffusion(c), lambda m: __import__("studio.engine.diffusion_graphs", fromlist=["_"]).diffusion_graphs(m)),  # noqa: E501
}


def register_family(name: str, build: Callable[[dict], "nn.Module"],
                    graphs: Callable[["nn.Module"], dict[str, GraphSpec]]) -> None:
    FAMILIES[name] = Family(build, graphs)


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise KeyError(f"no interactive graphs for model family '{name}'")
    return FAMILIES[name]
