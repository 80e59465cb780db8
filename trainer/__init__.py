"""vitrecon's trainer: pretraining on natural images, fine-tuning and evaluation on fastMRI data.

Run it as ``python -m trainer {pretrain,finetune,evaluate} ...`` or ``vitrecon train ...`` (a
separate process, so that a crash or out-of-memory here cannot take the viewer down); under
``torchrun`` it trains on several GPUs or nodes. Modules: ``config`` (dataclasses, YAML/JSON,
command-line overrides), ``data`` (datasets), ``masking`` (batched masks and FFTs on the device),
``tasks`` (pretraining vs fine-tuning), ``loop`` (the training loop), ``distributed`` (torchrun,
DDP), ``checkpointing`` (atomic checkpoints, resume, signals), ``progress`` (tqdm, JSON lines,
TensorBoard), ``evaluate`` (fastMRI per-volume metrics). It uses the engine and never Qt.
"""
