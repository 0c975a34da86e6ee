"""Shared defaults for the CIFAR-10 training configs."""

import ml_collections


def base_config(model: str) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.model = model
  c.data = ""                 # "" = $ONEPIXEL_CIFAR10 or ../shared/data/cifar10-jpeg.tar.gz; "tfds"; a path
  c.seed = 0
  c.num_val = 5000            # held out from the TRAINING split for per-epoch evaluation
  c.val_seed = 0
  c.batch_size = 256
  c.eval_batch_size = 500
  c.num_epochs = 60
  c.learning_rate = 0.1       # peak of the one-cycle (warm-up + cosine to 0) schedule
  c.warmup_fraction = 0.15
  c.warmup_init_factor = 0.04
  c.momentum = 0.9
  c.nesterov = True
  c.weight_decay = 5e-4
  c.label_smoothing = 0.1
  c.crop_padding = 4
  c.checkpoint_every_steps = 50
  c.max_to_keep = 2
  c.progress_interval = 60.0  # seconds between tqdm refreshes (keeps logs short)
  c.export = True             # write onepixel_jax/weights/<model>.msgpack at the end
  c.export_path = ""          # "" = onepixel_jax/weights/<model>.msgpack
  c.fp16_tolerance = 0.0005   # store float16 unless it costs more test accuracy than this
  return c
