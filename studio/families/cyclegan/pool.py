"""The history of translated pictures a CycleGAN discriminator learns from (Shrivastava et al. 2017).

Why: a discriminator shown only the generator's latest output chases it, and the two can
oscillate; shown a mix of the last ``size`` outputs it judges the generator's recent history.
Each new picture enters the pool while it fills; once full, half the time a random stored
picture is returned and replaced by the new one. The draws come from torch's global RNG,
which checkpoints save, and ``state`` holds the pool itself: a resumed run continues exactly.
"""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int, shape: tuple[int, int, int], device: torch.device | str = "cpu"):
        self.size = int(size)
        self.images = torch.zeros((self.size,) + tuple(shape), device=device)
        self.count = 0

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """``images`` (N, C, H, W), detached, -> N pictures for the discriminator (stored ones swapped in)."""
        if self.size == 0:
            return images
        out = []
        for image in images:
            if self.count < self.size:
                self.images[self.count] = image
                self.count += 1
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.stack(out)

    def state(self) -> dict[str, torch.Tensor]:
        return {"images": self.images.detach().cpu().clone(), "count": torch.tensor([self.count])}

    def load_state(self, state: dict[str, torch.Tensor]) -> None:
        if not state:  # a checkpoint of a run without a pool
            return
        if tuple(state["images"].shape) != tuple(self.images.shape):
            raise ValueError(f"the saved image pool is {tuple(state['images'].shape)}, this run's is "
                             f"{tuple(self.images.shape)}")
        self.images.copy_(state["images"])
        self.count = int(state["count"].reshape(-1)[0])
