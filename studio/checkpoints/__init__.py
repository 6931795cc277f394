"""Shipped checkpoints (package data): weights-only safetensors files and their ONNX graphs."""
