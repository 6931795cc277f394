"""CycleGAN training on the trainer protocol: two domains, four networks, two optimisers, exact resume.

Modules: "generators" (G_AB and G_BA, what the checkpoint ships), "D_A" and "D_B". Optimisers:
"generators" (both G) and "discriminators" (both D), Adam(2e-4, betas 0.5/0.999) as in the
paper, each with a LambdaLR that holds the rate for the first ``decay_start`` of the run and
decays it linearly to 0 over the rest. Losses (``loss``): LSGAN by default (the GAN loss zoo of
studio.families.dcgan.trainer), cycle weight lambda per direction, identity weight (0.5 lambda)
and the optional CyCADA semantic loss, the frozen shipped digit classifier's cross-entropy of the
input's digit on its translation. D learns from a pool of the last 50 translations
(``pool_size``), whose contents and fill are in the checkpoint, so a resumed run draws exactly
what an unbroken one would.

Domain A is the run's dataset unless ``domain_a`` names another; ``domain_b`` defaults to printed
digits (studio.training.domains). Each has its own DataLoader stream; ``--holdout`` keeps the last
N pictures of each out of training, for the metrics and the previews.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from studio.core.imaging import image_grid, to_uint8
from studio.data.datasets import DatasetError
from studio.data.fitting import FIT_MODES
from studio.families.cyclegan.model import CycleGANConfig, build_discriminator, build_generators
from studio.families.cyclegan.pool import ImagePool
from studio.families.dcgan.trainer import d_loss, g_loss
from studio.training.data import Batch, BatchStream, ImageSource, as_source
from studio.training.domains import DIGIT_DOMAINS, domain_kind, fit_to, is_grey, open_domain
from studio.training.events import Preview, TripletPreview
from studio.training.trainer import Trainer

LOSSES = ("lsgan", "ns", "hinge")  # WGAN-GP would need a gradient penalty on patch maps: not offered
# The zoo's LSGAN generator loss is Mao et al.'s 1/2 (G(z) - 1)^2; CycleGAN's is the plain mean square,
# against which its lambda = 10 was chosen: doubled here, the paper's balance of the terms holds.
ADVERSARIAL_SCALE = {"lsgan": 2.0}
DOMAIN_B = "b"  # the second stream's name
PREVIEW_COUNT = 8
METRIC_IMAGES = 256

CYCLEGAN_DEFAULTS: dict[str, Any] = {
    "domain_a": "", "domain_b": "printed", "fit": "crop", "printed_seed": 0, "digits": "auto",
    "loss": "lsgan", "cycle_weight": 10.0, "identity_weight": 5.0, "semantic_weight": 0.0,
    "pool_size": 50, "decay_start": 0.5, "beta1": 0.5, "beta2": 0.999, "classifier": "",
    "image_size": 32, "width": 12, "blocks": 3, "d_width": 32, "d_layers": 2,
}


def shipped_classifier_path():
    from studio.core.paths import shipped_checkpoint_dir

    return shipped_checkpoint_dir() / "digit_classifier.safetensors"


def load_digit_classifier(path: str = "", device: str | torch.device = "cpu") -> torch.nn.Module:
    """The frozen digit classifier (eval mode, no gradients for its weights): it scores, it never learns."""
    from studio.core.checkpoint import load_checkpoint
    from studio.core.family import get_family

    ckpt = load_checkpoint(path or shipped_classifier_path(), family="classifier")
    model = get_family("classifier").build_model(ckpt.config)
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ckpt.weights.items()})
    return model.to(device).eval().requires_grad_(False)


def _labelled_digits(source: ImageSource, spec: str) -> bool:
    return domain_kind(spec) in DIGIT_DOMAINS or (source.has_labels and is_grey(source))


class CycleGANTrainer(Trainer):
    family = "cyclegan"
    config_class = CycleGANConfig
    default_model = dict(CYCLEGAN_DEFAULTS)
    shipped = "generators"

    def __init__(self, options, dataset, context=None, extra_data=None):
        main = as_source(dataset)
        config = self.configure(dict(options.model), main)
        domain_a, domain_b = self.domains(config, main)
        super().__init__(options, domain_a, context, extra_data)
        cfg = self.options.model
        ctx = self.context
        held = min(options.holdout, len(domain_b) // 2)
        b_train, b_held = domain_b.split(len(domain_b) - held)
        self.eval_b = b_held if held else b_train
        self.streams[DOMAIN_B] = BatchStream(b_train, options.batch_size, options.seed, 1, self.device,
                                             ctx.rank, ctx.world_size, options.workers)
        shape = (int(cfg["channels"]), int(cfg["image_size"]), int(cfg["image_size"]))
        self.pools = {d: ImagePool(int(cfg["pool_size"]), shape, self.device) for d in ("a", "b")}
        self.classifier = None
        if float(cfg["semantic_weight"]) > 0 or cfg["digits"]:
            self.classifier = load_digit_classifier(str(cfg["classifier"]), self.device)

    # ---- the data ----------------------------------------------------------------------
    @classmethod
    def domains(cls, config: dict[str, Any], main: ImageSource) -> tuple[ImageSource, ImageSource]:
        """Both domains as sources of (channels, image_size, image_size)."""
        size, fit, seed = int(config["image_size"]), config["fit"], int(config["printed_seed"])
        a = open_domain(str(config["domain_a"]), size, fit, seed, main)
        b = open_domain(str(config["domain_b"]), size, fit, seed, main)
        c = int(config["channels"])
        return fit_to(a, c, size), fit_to(b, c, size)

    @classmethod
    def configure(cls, model: dict[str, Any], data) -> dict[str, Any]:
        config = super().configure(model, data)
        problems = []
        if config["loss"] not in LOSSES:
            problems.append(f"unknown loss '{config['loss']}' (choose {', '.join(LOSSES)})")
        for key in ("cycle_weight", "identity_weight", "semantic_weight"):
            if not isinstance(config[key], (int, float)) or not float(config[key]) >= 0:
                problems.append(f"{key} must be a number, at least 0")
        if not (isinstance(config["pool_size"], int) and config["pool_size"] >= 0):
            problems.append("pool_size must be a whole number, at least 0")
        if not (isinstance(config["decay_start"], (int, float)) and 0.0 <= float(config["decay_start"]) <= 1.0):
            problems.append("decay_start must be in [0, 1] (the share of the steps before the rate decays)")
        if config["fit"] not in FIT_MODES:
            problems.append(f"unknown fit '{config['fit']}' (choose {', '.join(FIT_MODES)})")
        if config["digits"] not in ("auto", True, False):
            problems.append("digits must be auto, true or false")
        if problems:
            raise ValueError("; ".join(problems))
        size, fit, seed = int(config["image_size"]), config["fit"], int(config["printed_seed"])
        a = open_domain(str(config["domain_a"]), size, fit, seed, as_source(data))
        b = open_domain(str(config["domain_b"]), size, fit, seed, as_source(data))
        for name, source in (("A", a), ("B", b)):
            if len(source) < 2:
                raise DatasetError(f"{source.name}: domain {name} holds {len(source)} picture(s); it needs at least 2")
        config.setdefault("channels", 1 if is_grey(a) and is_grey(b) else 3)
        if config["digits"] == "auto":
            config["digits"] = bool(int(config["channels"]) == 1 and size in (28, 32)
                                    and _labelled_digits(a, str(config["domain_a"]))
                                    and _labelled_digits(b, str(config["domain_b"])))
        if float(config["semantic_weight"]) > 0:
            if not config["digits"]:
                raise ValueError("the semantic loss reads digits with the digit classifier, and these domains "
                                 "are not grey digits (set digits=true if they are)")
            path = config["classifier"] or shipped_classifier_path()
            from pathlib import Path

            if not Path(path).exists():
                raise ValueError(f"{path}: the digit classifier the semantic loss needs is missing")
        CycleGANConfig.from_dict(config)  # names a bad size or width before anything starts
        return config

    @classmethod
    def build_modules(cls, config: dict[str, Any]) -> dict[str, torch.nn.Module]:
        return {"generators": build_generators(config), "D_A": build_discriminator(config),
                "D_B": build_discriminator(config)}

    # ---- optimisers and schedules --------------------------------------------------------
    @property
    def generators(self):
        return self.modules["generators"]

    def build_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.options.model
        betas = (float(cfg["beta1"]), float(cfg["beta2"]))
        discriminators = list(self.modules["D_A"].parameters()) + list(self.modules["D_B"].parameters())
        return {"generators": torch.optim.Adam(self.generators.parameters(), lr=self.options.lr, betas=betas),
                "discriminators": torch.optim.Adam(discriminators, lr=self.options.lr, betas=betas)}

    def lr_factor(self, optimizer: str, step: int) -> float:
        """Constant, then linearly to 0 from ``decay_start`` of the run (the paper's schedule);
        ``--schedule cosine`` uses the protocol's cosine instead."""
        if self.options.schedule == "cosine":
            return super().lr_factor(optimizer, step)
        total = max(1, self.options.steps)
        start = float(self.options.model["decay_start"]) * total
        if step <= start or start >= total:
            return 1.0
        return max(0.0, 1.0 - (step - start) / (total - start))

    # ---- the step --------------------------------------------------------------------
    def _labels(self, batch: Batch, images01: torch.Tensor) -> torch.Tensor:
        """The digit each picture shows: its label, or what the frozen classifier reads (CyCADA's pseudo-labels)."""
        if batch.labels is not None:
            return batch.labels
        with torch.no_grad():
            return self.classifier(images01).argmax(dim=1)

    def train_step(self, batch: Batch) -> dict[str, float]:
        cfg = self.options.model
        kind = cfg["loss"]
        lam, lam_idt, lam_sem = (float(cfg[k]) for k in ("cycle_weight", "identity_weight", "semantic_weight"))
        batch_b = self.next_batch(DOMAIN_B)
        a, b = batch.images * 2.0 - 1.0, batch_b.images * 2.0 - 1.0
        G, D_A, D_B = self.generators, self.modules["D_A"], self.modules["D_B"]
        g_opt, d_opt = self.optimizers["generators"], self.optimizers["discriminators"]

        D_A.requires_grad_(False)  # G's step needs the discriminators' input gradients only
        D_B.requires_grad_(False)
        fake_b, fake_a = G.G_AB(a), G.G_BA(b)
        rec_a, rec_b = G.G_BA(fake_b), G.G_AB(fake_a)
        scale = ADVERSARIAL_SCALE.get(kind, 1.0)
        adversarial = scale * (g_loss(kind, D_B(fake_b)) + g_loss(kind, D_A(fake_a)))
        cycle = (rec_a - a).abs().mean() + (rec_b - b).abs().mean()
        total = adversarial + lam * cycle
        out: dict[str, float] = {}
        if lam_idt > 0:
            identity = (G.G_AB(b) - b).abs().mean() + (G.G_BA(a) - a).abs().mean()
            total = total + lam_idt * identity
            out["identity"] = float(identity.detach()) / 4.0  # per direction, on the 0..1 scale
        if lam_sem > 0:
            semantic = (F.cross_entropy(self.classifier((fake_b + 1.0) * 0.5), self._labels(batch, batch.images))
                        + F.cross_entropy(self.classifier((fake_a + 1.0) * 0.5), self._labels(batch_b, batch_b.images)))
            total = total + lam_sem * semantic
            out["semantic"] = float(semantic.detach()) / 2.0
        g_opt.zero_grad(set_to_none=True)
        total.backward()
        g_opt.step()

        D_A.requires_grad_(True)
        D_B.requires_grad_(True)
        pooled_b, pooled_a = self.pools["b"].query(fake_b.detach()), self.pools["a"].query(fake_a.detach())
        loss_d_b = d_loss(kind, D_B(b), D_B(pooled_b))
        loss_d_a = d_loss(kind, D_A(a), D_A(pooled_a))
        d_opt.zero_grad(set_to_none=True)
        (loss_d_a + loss_d_b).backward()
        d_opt.step()
        return {"d_a": float(loss_d_a.detach()), "d_b": float(loss_d_b.detach()),
                "g_adv": float(adversarial.detach()), "cycle": float(cycle.detach()) / 4.0, **out}

    # ---- resume ----------------------------------------------------------------------
    def family_state(self) -> dict[str, torch.Tensor]:
        state = {}
        for d, pool in self.pools.items():
            state.update({f"pool_{d}/{k}": v for k, v in pool.state().items()})
        return state

    def load_family_state(self, state: dict[str, torch.Tensor]) -> None:
        for d, pool in self.pools.items():
            prefix = f"pool_{d}/"
            pool.load_state({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    # ---- previews and metrics ----------------------------------------------------------
    @torch.no_grad()
    def translate(self, images01: torch.Tensor, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(translation, round trip) in [0, 1] of pictures in [0, 1], ``direction`` "AtoB" or "BtoA"."""
        G = self.generators
        there, back = (G.G_AB, G.G_BA) if direction == "AtoB" else (G.G_BA, G.G_AB)
        x = images01.to(self.device) * 2.0 - 1.0
        fake = there(x)
        return ((fake.clamp(-1, 1) + 1) * 0.5), ((back(fake).clamp(-1, 1) + 1) * 0.5)

    @torch.no_grad()
    def triplets(self) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        out = {}
        for direction, source in (("AtoB", self.eval_data), ("BtoA", self.eval_b)):
            real = source.first(PREVIEW_COUNT)
            fake, rec = self.translate(real, direction)
            out[direction] = tuple(np.stack([to_uint8(x) for x in t.cpu().numpy()]) for t in (real, fake, rec))
        return out

    @staticmethod
    def triplet_grid(triplets) -> np.ndarray:
        """Rows: real A, A->B, A->B->A, real B, B->A, B->A->B."""
        rows = []
        for real, fake, rec in triplets.values():
            for images in (real, fake, rec):
                rows.append(images)
        stack = np.concatenate(rows)
        chw = stack[:, None] if stack.ndim == 3 else stack.transpose(0, 3, 1, 2)
        return image_grid(chw.astype(np.float32) / 255.0, cols=len(rows[0]))

    def preview(self) -> np.ndarray:
        return self.triplet_grid(self.triplets())

    def preview_event(self) -> Preview:
        self.train_mode(False)
        try:
            triplets = self.triplets()
        finally:
            self.train_mode(True)
        return TripletPreview(self.step, self.triplet_grid(triplets), triplets)

    @torch.no_grad()
    def metrics(self) -> dict[str, Any]:
        """Round-trip error (and, for digits, labels kept) on held-out pictures; loss averages.

        The full evaluation (FID against each domain's floor): checkpoints/evaluate_cyclegan.py.
        """
        out: dict[str, Any] = {"loss": self.options.model["loss"]}
        was_training = self.generators.training
        self.generators.eval()
        try:
            for direction, source in (("AtoB", self.eval_data), ("BtoA", self.eval_b)):
                n = min(METRIC_IMAGES, len(source))
                batch = source.__getitems__(list(range(n)))
                fake, rec = self.translate(batch.images, direction)
                x = batch.images.to(self.device)
                out[f"cycle_l1_{direction}"] = round(float((rec - x).abs().mean()), 5)
                if self.options.model["digits"] and self.classifier is not None:
                    truth = self._labels(Batch(x, None if batch.labels is None else batch.labels.to(self.device)), x)
                    kept = (self.classifier(fake).argmax(dim=1) == truth).float().mean()
                    out[f"label_kept_{direction}"] = round(float(kept), 4)
                out[f"metric_images_{direction}"] = n
        finally:
            self.generators.train(was_training)
        for key in ("d_a", "d_b", "g_adv", "cycle"):
            values = self.history.get(key, [])[-100:]
            if values:
                out[f"{key}_last100"] = round(float(np.mean(values)), 4)
        return out
