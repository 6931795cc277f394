"""What every render request names: the checkpoints and where to run them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A checkpoint file (or run folder) and the backend and device to run it on.

    ``extra`` names further checkpoints a request needs, by role: a generator
    guided by a classifier is ``Target(generator, extra=(("classifier", path),))``.
    """

    checkpoint: str
    backend: str = "onnx"  # "onnx" or "torch"
    device: str = "auto"  # "auto", "cpu" or "cuda"
    extra: tuple[tuple[str, str], ...] = ()  # (role, checkpoint path)

    def __post_init__(self):
        roles = [role for role, _ in self.extra]
        if len(set(roles)) != len(roles):
            raise ValueError(f"a target names each role once, got {roles}")
        if "main" in roles:
            raise ValueError("the role 'main' is the target's own checkpoint")

    def checkpoint_for(self, role: str = "main") -> str:
        """The checkpoint playing ``role`` ("main" is the target's own)."""
        if role == "main":
            return self.checkpoint
        for name, path in self.extra:
            if name == role:
                return path
        known = ", ".join(["main"] + [name for name, _ in self.extra])
        raise ValueError(f"the request names no '{role}' checkpoint (it has: {known})")

    @property
    def roles(self) -> tuple[str, ...]:
        return ("main",) + tuple(name for name, _ in self.extra)
