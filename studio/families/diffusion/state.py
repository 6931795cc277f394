"""What the diffusion panel knows, without Qt: the sampler settings, the recorded run, the playhead.

The panel's widgets write the settings here and draw from here; every rule
about playback (play again from the start once finished, rewind, step, stay
in bounds, follow the newest step while a sample is recording) lives in this
class, so it is tested with plain pytest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SAMPLERS = ("ddim", "ddpm")
VARIANCES = ("fixed_small", "fixed_large")
DEFAULT_STEPS = {"ddim": 50, "ddpm": 1000}


@dataclass(frozen=True)
class SampleSettings:
    """The settings one recorded run was made with."""

    sampler: str
    steps: int
    eta: float
    variance: str
    seed: int
    batch: int
    spacing: str = "leading"
    clipped_eps: bool = False


@dataclass(frozen=True)
class StepFrame:
    """One recorded step: x_t at paper time ``t`` going to ``t_prev``; ``k == n`` is the finished sample."""

    k: int
    n: int
    t: int
    t_prev: int
    images: dict[str, np.ndarray]  # view -> uint8 (N, C, H, W)

    @property
    def final(self) -> bool:
        return self.k >= self.n

    def label(self) -> str:
        if self.final:
            return f"done: {self.n} steps, t = 0"
        return f"step {self.k + 1} of {self.n}, t = {self.t}"


def finished_frame(n: int, images: np.ndarray) -> StepFrame:
    """The finished sample as the last frame: x_t and the prediction are the sample, no noise is left."""
    grey = np.full_like(images, 128)
    return StepFrame(n, n, 0, 0, {"x_t": images, "x0": images, "eps": grey, "noise": grey})


@dataclass
class DiffusionState:
    sampler: str = "ddim"
    steps: int = DEFAULT_STEPS["ddim"]
    eta: float = 0.0
    variance: str = "fixed_small"
    seed: int = 0
    batch: int = 1
    spacing: str = "leading"  # where the steps fall in 0..T-1 (diffusers' timestep_spacing)
    clipped_eps: bool = False  # DDIM: step along the noise the clipped x0 implies
    trajectory: list[StepFrame] = field(default_factory=list)
    current: int = 0  # index into trajectory of the frame shown
    playing: bool = False
    loop: bool = False
    speed: int = 30  # playback, steps per second
    recording: bool = False  # a sample is running and appending to trajectory
    recorded_with: SampleSettings | None = None

    # --- settings --------------------------------------------------------------------
    def set_sampler(self, name: str) -> None:
        """Switch sampler; the steps follow when they were the old sampler's default (DDIM 50, DDPM 1000)."""
        if name not in SAMPLERS:
            raise ValueError(f"unknown sampler '{name}' (choose {', '.join(SAMPLERS)})")
        if self.steps == DEFAULT_STEPS[self.sampler]:
            self.steps = DEFAULT_STEPS[name]
        self.sampler = name

    def settings(self) -> SampleSettings:
        return SampleSettings(self.sampler, int(self.steps), float(self.eta), self.variance,
                              int(self.seed), int(self.batch), self.spacing, bool(self.clipped_eps))

    # --- the recorded run --------------------------------------------------------------
    def count(self) -> int:
        return len(self.trajectory)

    def frame(self) -> StepFrame | None:
        return self.trajectory[self.current] if self.trajectory else None

    def at_end(self) -> bool:
        return self.current >= self.count() - 1

    def finished(self) -> bool:
        """The trajectory ends in a finished sample (not cancelled, not still recording)."""
        return bool(self.trajectory) and self.trajectory[-1].final

    def begin_recording(self, settings: SampleSettings | None = None) -> None:
        self.trajectory.clear()
        self.current = 0
        self.playing = False
        self.recording = True
        self.recorded_with = settings or self.settings()

    def record(self, frames: list[StepFrame]) -> bool:
        """Append frames; a playhead resting on the newest frame follows to the new newest.

        Returns whether the shown frame changed.
        """
        if not frames:
            return False
        was_empty = not self.trajectory
        follow = was_empty or (self.at_end() and not self.playing)
        self.trajectory.extend(frames)
        if follow:
            self.current = self.count() - 1
            return True
        return False

    def stop_recording(self) -> None:
        self.recording = False

    # --- playback ----------------------------------------------------------------------
    def seek(self, index: int) -> bool:
        """Show frame ``index`` (clamped to the recorded frames); returns whether it changed."""
        before = self.current
        self.current = int(np.clip(int(index), 0, max(0, self.count() - 1)))
        return self.current != before

    def play(self) -> bool:
        """Play; from the end (a finished sample), play again from the start. False: nothing to play."""
        if self.count() < 2:
            self.playing = False
            return False
        if self.at_end():
            self.current = 0
        self.playing = True
        return True

    def pause(self) -> None:
        self.playing = False

    def toggle(self) -> bool:
        if self.playing:
            self.pause()
            return False
        return self.play()

    def rewind(self) -> bool:
        """Back to the first recorded step; playing goes on from there."""
        return self.seek(0)

    def step(self, delta: int) -> bool:
        """Move ``delta`` frames and pause: stepping is for looking closely."""
        self.pause()
        return self.seek(self.current + int(delta))

    def tick(self) -> bool:
        """One playback tick: the next frame; at the end loop (if set) or stop. Returns whether it moved."""
        if not self.playing:
            return False
        if self.at_end():
            if self.loop and not self.recording and self.count() >= 2:
                self.current = 0
                return True
            self.playing = False  # while recording, this leaves the playhead following the newest step
            return False
        self.current += 1
        return True

    def interval_ms(self) -> int:
        return max(1, int(round(1000.0 / max(1, self.speed))))
