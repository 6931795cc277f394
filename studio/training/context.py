"""Where this process stands in a run: its rank, the world size and its device.

Under ``torchrun`` every rank runs the same trainer; only the main rank (0)
writes the log, previews and checkpoints and holds the run folder's lock.
torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK) are read here
and nowhere else. Nothing is wrapped in DDP yet; the data sampler already
gives each rank its own slice of every global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: str = "cpu"  # a torch device string: "cpu", "cuda:0", ...

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @staticmethod
    def main_from_env(environ: dict | None = None) -> bool:
        """Whether this process is rank 0, known before any device is chosen."""
        return str((os.environ if environ is None else environ).get("RANK", "0")).strip() in ("0", "")

    @classmethod
    def from_env(cls, device: str = "auto", environ: dict | None = None) -> "RunContext":
        """The context torchrun describes (a single process when its variables are unset)."""
        env = os.environ if environ is None else environ
        try:
            rank = int(env.get("RANK", 0))
            world = int(env.get("WORLD_SIZE", 1))
            local = int(env.get("LOCAL_RANK", rank))
        except ValueError as exc:
            raise ValueError(f"torchrun's RANK/WORLD_SIZE/LOCAL_RANK are not numbers ({exc})") from exc
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank {rank} does not fit world size {world}")
        return cls(rank, world, local, resolve_device(device, local if world > 1 else None))


def resolve_device(name: str, local_rank: int | None = None) -> str:
    """"auto" is the GPU when torch sees one; under torchrun each rank takes its local GPU."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device '{name}' requested, but torch sees no CUDA GPU")
        if name == "cuda" and local_rank is not None:  # unrun here: no GPU on the dev machines
            name = f"cuda:{local_rank}"
    return name
