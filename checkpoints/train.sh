#!/usr/bin/env bash
# Retrain the shipped checkpoints from the MNIST digits in ../shared/datasets/mnist.
# Usage: bash checkpoints/train.sh [classifier|vae2d|vae16d|ddpm|dcgan|stylegan|cyclegan|cyclegan_no_semantic|vae16d_beta ...]   (default: all but the sweep)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RUNS=${RUNS:-runs}  # training runs (checkpoints, logs); the shipped files go to studio/checkpoints/
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(classifier vae2d vae16d ddpm dcgan stylegan cyclegan cyclegan_no_semantic)
for t in "${targets[@]}"; do
  case "$t" in
    classifier) $PY -m studio.train classifier --steps 4000 --batch-size 128 --lr 2e-3 --schedule cosine --holdout 1000 \
              --threads 1 --device cpu --checkpoint-every 1000 --out "$RUNS"/digit_classifier \
              --export studio/checkpoints/digit_classifier.safetensors ;;
    vae2d)  $PY -m studio.train vae --latent-dim 2 --steps 4000 --lr 2e-3 --schedule cosine --holdout 1000 \
              --out "$RUNS"/vae_mnist_2d --export studio/checkpoints/vae_mnist_2d.safetensors ;;
    vae16d) $PY -m studio.train vae --latent-dim 16 --steps 4000 --lr 2e-3 --schedule cosine --holdout 1000 \
              --out "$RUNS"/vae_mnist_16d --export studio/checkpoints/vae_mnist_16d.safetensors ;;
    # The UNet: 9,000 steps (cosine LR from 1e-3), then three fine-tunes of 4,000 (cosine LR from 2e-4, then 1e-4 twice).
    ddpm)   $PY -m studio.train diffusion --steps 9000 --batch-size 64 --lr 1e-3 --schedule cosine --holdout 1000 --set base=24 --threads 1 \
              --checkpoint-every 500 --out "$RUNS"/unet_ddpm_mnist --export "$RUNS"/unet_ddpm_mnist_9000.safetensors
            $PY -m studio.train diffusion --init "$RUNS"/unet_ddpm_mnist_9000.safetensors --steps 4000 --batch-size 64 --lr 2e-4 \
              --schedule cosine --holdout 1000 --threads 1 --checkpoint-every 500 --out "$RUNS"/unet_ddpm_mnist_finetune \
              --export "$RUNS"/unet_ddpm_mnist_13000.safetensors
            $PY -m studio.train diffusion --init "$RUNS"/unet_ddpm_mnist_13000.safetensors --steps 4000 --batch-size 64 --lr 1e-4 \
              --schedule cosine --holdout 1000 --threads 1 --seed 1 --checkpoint-every 1000 --out "$RUNS"/unet_ddpm_mnist_finetune2 \
              --export "$RUNS"/unet_ddpm_mnist_17000.safetensors
            $PY -m studio.train diffusion --init "$RUNS"/unet_ddpm_mnist_17000.safetensors --steps 4000 --batch-size 64 --lr 1e-4 \
              --schedule cosine --holdout 1000 --threads 1 --seed 2 --checkpoint-every 1000 --out "$RUNS"/unet_ddpm_mnist_finetune3 \
              --export studio/checkpoints/unet_ddpm_mnist.safetensors ;;
    dcgan)  $PY -m studio.train dcgan --steps 23000 --batch-size 64 --lr 2e-4 --holdout 1000 --threads 1 \
              --set width=32 --set refine=2 --set minibatch_std=true --set label_smoothing=0.1 --set instance_noise=0.1 \
              --checkpoint-every 1000 --out "$RUNS"/dcgan_mnist --export studio/checkpoints/dcgan_mnist.safetensors
            $PY checkpoints/evaluate_gan.py studio/checkpoints/dcgan_mnist.safetensors --write-metrics ;;
    # StyleGAN on the digits recoloured at load time (recolour=true is the family default; seed 0).
    stylegan) $PY -m studio.train stylegan --steps 22000 --batch-size 16 --lr 2e-3 --holdout 1000 --threads 1 \
              --set 'widths=[64,64,32,16]' --checkpoint-every 1000 --out "$RUNS"/stylegan_mnist_colour \
              --export studio/checkpoints/stylegan_mnist_colour.safetensors
            $PY checkpoints/evaluate_gan.py studio/checkpoints/stylegan_mnist_colour.safetensors --projection 100 \
              --write-metrics ;;
    # The beta sweep of the 16-D VAE (README, Evaluation): three runs beside the shipped beta=1, then one table.
    vae16d_beta)
            for b in 0.5 2 4; do
              $PY -m studio.train vae --latent-dim 16 --beta $b --steps 4000 --lr 2e-3 --schedule cosine --holdout 1000 \
                --threads 1 --out "$RUNS"/vae16d_beta$b --export "$RUNS"/vae16d_beta$b.safetensors
            done
            $PY -m studio.evaluate --checkpoint studio/checkpoints/vae_mnist_16d.safetensors "$RUNS"/vae16d_beta{0.5,2,4}.safetensors \
              --n 1000 --no-backend-timing --json assets/evaluation_vae16d_beta.json ;;
    # CycleGAN: handwritten MNIST digits (A, the default data) <-> printed digits (B, rendered at load time),
    # the last 1,000 of each held out; the semantic loss reads translations with the shipped classifier.
    cyclegan) $PY -m studio.train cyclegan --steps 20000 --batch-size 4 --lr 2e-4 --holdout 1000 --threads 1 \
              --device cpu --width 12 --blocks 3 --semantic-weight 1 --identity-weight 0 --checkpoint-every 2000 \
              --out "$RUNS"/cyclegan_digits --export studio/checkpoints/cyclegan_digits.safetensors
            $PY checkpoints/evaluate_cyclegan.py studio/checkpoints/cyclegan_digits.safetensors --write-metrics ;;
    # The same CycleGAN without the semantic loss: the panel's "Semantic loss" switch compares the two.
    cyclegan_no_semantic) $PY -m studio.train cyclegan --steps 20000 --batch-size 4 --lr 2e-4 --holdout 1000 --threads 1 \
              --device cpu --width 12 --blocks 3 --semantic-weight 0 --identity-weight 0 --checkpoint-every 2000 \
              --out "$RUNS"/cyclegan_digits_no_semantic --export studio/checkpoints/cyclegan_digits_no_semantic.safetensors
            $PY checkpoints/evaluate_cyclegan.py studio/checkpoints/cyclegan_digits_no_semantic.safetensors --write-metrics ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
done
