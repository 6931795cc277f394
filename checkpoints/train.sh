#!/usr/bin/env bash
# Retrain the shipped checkpoints from the MNIST digits in ../shared/datasets/mnist.
# Usage: bash checkpoints/train.sh [classifier|vae2d|vae16d|ddpm ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RUNS=${RUNS:-runs}  # training runs (checkpoints, logs); the shipped files go to studio/checkpoints/
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(classifier vae2d vae16d ddpm)
for t in "${targets[@]}"; do
  case "$t" in
    classifier) $PY -m studio.train classifier --steps 4000 --batch-size 128 --lr 2e-3 --schedule cosine --holdout 1000 \
              --threads 1 --device cpu --checkpoint-every 1000 --out "$RUNS"/digit_classifier \
              --export studio/checkpoints/digit_classifier.safetensors ;;
    vae2d)  $PY -m studio.train vae --latent-dim 2 --steps 4000 --lr 2e-3 --schedule cosine --holdout 1000 \
              --out "$RUNS"/vae_mnist_2d --export studio/checkpoints/vae_mnist_2d.safetensors ;;
    vae16d) $PY -m studio.train vae --latent-dim 16 --steps 4000 --lr 2e-3 --schedule cosine --holdout 1000 \
              --out "$RUNS"/vae_mnist_16d --export studio/checkpoints/vae_mnist_16d.safetensors ;;
    ddpm)   $PY -m studio.train diffusion --steps 4000 --batch-size 64 --lr 1e-3 --schedule cosine --holdout 1000 --set base=24 \
              --checkpoint-every 500 --out "$RUNS"/unet_ddpm_mnist --export studio/checkpoints/unet_ddpm_mnist.safetensors ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done
