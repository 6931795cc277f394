"""A trainer's whole state in a checkpoint, and back: exact resume.

The shipped weights (what inference loads) are the checkpoint's weights;
everything else is training state: the other modules and averages, every
optimiser and its learning-rate schedule, the RNGs (torch, CUDA, Python,
numpy), each data stream's (epoch, position) and the loss history. Tensors
go into the safetensors file, small values into its JSON metadata.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from studio.core.checkpoint import MODEL_PREFIX, OPTIMIZER_PREFIX, RNG_PREFIX, Checkpoint, CheckpointError
from studio.core.checkpoint_checks import same_shape

if TYPE_CHECKING:
    from studio.training.trainer import Trainer

STATE_VERSION = 2  # extra["trainer_state"]; 1 was the single-optimiser layout
MODULE_PREFIX = "module/"
EMA_PREFIX = "ema/"
HISTORY_PREFIX = "history/"
FAMILY_PREFIX = "family/"


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _tensor(a) -> torch.Tensor:
    return torch.from_numpy(np.array(a))


def shipped_source(trainer: "Trainer") -> tuple[str, str]:
    """("ema" | "module", name): where the checkpoint's weights come from."""
    name = trainer.shipped
    return ("ema", name) if name in trainer.emas else ("module", name)


def pack(trainer: "Trainer", with_training_state: bool) -> tuple[dict, dict, dict]:
    """(weights, training_state, extra) as numpy arrays and JSON values."""
    kind, name = shipped_source(trainer)
    shipped = trainer.emas[name].state_dict() if kind == "ema" else trainer.modules[name].state_dict()
    weights = {k: _np(v) for k, v in shipped.items()}
    bad = [k for k, v in weights.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        raise ValueError(f"the weights are not finite ({', '.join(bad[:3])}); nothing was saved")
    extra: dict[str, Any] = {"options": trainer.options.to_dict(), "trainer_state": STATE_VERSION}
    if trainer.init_from:
        extra["init"] = dict(trainer.init_from)
    if not with_training_state:
        return weights, {}, extra
    state: dict[str, np.ndarray] = {}
    for mname, module in trainer.modules.items():
        if (kind, name) != ("module", mname):
            state.update({f"{MODULE_PREFIX}{mname}/{k}": _np(v) for k, v in module.state_dict().items()})
    extra["ema"] = {}
    for ename, ema in trainer.emas.items():
        extra["ema"][ename] = ema.updates
        if (kind, name) != ("ema", ename):
            state.update({f"{EMA_PREFIX}{ename}/{k}": _np(v) for k, v in ema.state_dict().items()})
    extra["optimizers"], extra["schedulers"] = {}, {}
    for oname, opt in trainer.optimizers.items():
        sd = opt.state_dict()
        for idx, slots in sd["state"].items():
            for key, value in slots.items():
                value = value if torch.is_tensor(value) else torch.tensor(value)
                state[f"{OPTIMIZER_PREFIX}{oname}/{idx}/{key}"] = _np(value)
        extra["optimizers"][oname] = sd["param_groups"]
        extra["schedulers"][oname] = trainer.schedulers[oname].state_dict()
    state[RNG_PREFIX + "torch"] = _np(torch.get_rng_state())
    if trainer.device.type == "cuda":  # the noise of a CUDA step comes from the CUDA generator
        state[RNG_PREFIX + "cuda"] = _np(torch.cuda.get_rng_state(trainer.device))
    kind_np, keys, pos, has_gauss, gauss = np.random.get_state()
    state[RNG_PREFIX + "numpy"] = np.asarray(keys)
    extra["rng"] = {"python": _jsonable(random.getstate()), "numpy": [kind_np, int(pos), int(has_gauss), float(gauss)]}
    extra["data"] = {d: s.state() for d, s in trainer.streams.items()}
    for k, v in trainer.history.items():
        state[HISTORY_PREFIX + k] = np.asarray(v, dtype=np.float64)
    state.update({FAMILY_PREFIX + k: _np(v) for k, v in trainer.family_state().items()})
    # The file stores 0-d tensors (Adam's step) as 1-d; name them to restore their shape.
    extra["scalars"] = sorted(k for k, v in state.items() if np.ndim(v) == 0)
    return weights, state, extra


def unpack(trainer: "Trainer", ckpt: Checkpoint) -> None:
    """Put ``ckpt`` back into ``trainer`` (see ``pack``)."""
    where = ckpt.path or "the checkpoint"
    if ckpt.extra.get("trainer_state") != STATE_VERSION or not ckpt.training_state:
        raise CheckpointError(
            f"{where}: holds no training state this version can resume (weights only, or saved by an "
            "older version); start a new run")
    extra = ckpt.extra
    ts = {k: (np.asarray(v).reshape(()) if k in set(extra.get("scalars", ())) else v)
          for k, v in ckpt.training_state.items()}
    kind, name = shipped_source(trainer)

    def load(module_or_ema, state: dict, what: str, updates: int | None = None) -> None:
        try:
            if updates is None:
                module_or_ema.load_state_dict(state)
            else:
                module_or_ema.load_state_dict(state, updates)
        except RuntimeError as exc:
            raise CheckpointError(f"{where}: the {what} weights do not fit this model ({exc})") from exc

    def prefixed(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: _tensor(v) for k, v in ts.items() if k.startswith(prefix)}

    shipped = {k: _tensor(v) for k, v in ckpt.weights.items()}
    for mname, module in trainer.modules.items():
        state = shipped if (kind, name) == ("module", mname) else prefixed(f"{MODULE_PREFIX}{mname}/")
        load(module, state, mname)
    for ename, ema in trainer.emas.items():
        state = shipped if (kind, name) == ("ema", ename) else prefixed(f"{EMA_PREFIX}{ename}/")
        load(ema, state, f"averaged {ename}", updates=int(extra["ema"][ename]))
    for oname, opt in trainer.optimizers.items():
        slots: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in prefixed(f"{OPTIMIZER_PREFIX}{oname}/").items():
            idx, slot = key.split("/", 1)
            slots.setdefault(int(idx), {})[slot] = value
        try:
            opt.load_state_dict({"state": slots, "param_groups": extra["optimizers"][oname]})
            trainer.schedulers[oname].load_state_dict(dict(extra["schedulers"][oname]))
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{where}: the '{oname}' optimiser state does not fit ({exc})") from exc
    torch.set_rng_state(_tensor(ts[RNG_PREFIX + "torch"]))
    if RNG_PREFIX + "cuda" in ts and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(_tensor(ts[RNG_PREFIX + "cuda"]), trainer.device)
    py = extra["rng"]["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind_np, pos, has_gauss, gauss = extra["rng"]["numpy"]
    np.random.set_state((kind_np, np.array(ts[RNG_PREFIX + "numpy"]), pos, has_gauss, gauss))
    for d, stream in trainer.streams.items():
        stream.load_state(extra["data"][d])
    trainer.history = {k[len(HISTORY_PREFIX):]: [float(x) for x in v]
                       for k, v in ts.items() if k.startswith(HISTORY_PREFIX)} or {"step": []}
    trainer.load_family_state(prefixed(FAMILY_PREFIX))
    trainer.init_from = dict(extra["init"]) if isinstance(extra.get("init"), dict) else None
    trainer.step = ckpt.step


def load_shipped_weights(trainer: "Trainer", ckpt: Checkpoint) -> None:
    """``ckpt``'s weights into the module the checkpoint ships and into its average, if it has one."""
    _kind, name = shipped_source(trainer)
    state = {k: _tensor(v) for k, v in ckpt.weights.items()}
    try:
        trainer.modules[name].load_state_dict(state)
        if name in trainer.emas:
            trainer.emas[name].load_state_dict(state, updates=0)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        # torch's first line only says loading failed; the second names the mismatch.
        first = (lines[1] if len(lines) > 1 else lines[0] if lines else "shapes differ").rstrip(".")
        raise CheckpointError(f"{ckpt.path or 'the checkpoint'}: its weights do not fit this model "
                              f"({first}); give the model options it was trained with") from None


def _jsonable(value):
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def check_shapes(trainer_cls, config: dict, ckpt_shapes: dict[str, tuple[int, ...]], where: str) -> None:
    """Check a checkpoint's tensor shapes against modules built from ``config`` (on the meta device)."""
    with torch.device("meta"):
        modules = trainer_cls.build_modules(dict(config))
    expect = {f"{MODEL_PREFIX}{k}": tuple(v.shape) for k, v in modules[trainer_cls.shipped].state_dict().items()}
    for mname, module in modules.items():
        prefix = f"{MODULE_PREFIX}{mname}/"
        if any(k.startswith(prefix) for k in ckpt_shapes):
            expect.update({prefix + k: tuple(v.shape) for k, v in module.state_dict().items()})
    wrong = [f"{k} is {tuple(ckpt_shapes[k])}, the model needs {s}"
             for k, s in expect.items() if k in ckpt_shapes and not same_shape(ckpt_shapes[k], s)]
    missing = [k for k in expect if k not in ckpt_shapes]
    if wrong or missing:
        first = wrong[0] if wrong else f"{missing[0]} is missing"
        n = len(wrong) + len(missing)
        raise CheckpointError(f"{where}: the weights do not fit this model ({first}"
                              + (f", and {n - 1} more" if n > 1 else "") + ")")
