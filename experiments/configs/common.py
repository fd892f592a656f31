"""Shared config pieces: ``key=value,...`` overrides and the defaults every deep recipe has."""

import ml_collections


def apply_overrides(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
    """Applies ``arg`` = ``"name=value,name=value"`` (values cast to the field's type)."""
    if arg:
        items = arg.split(",")
        if items[0] == "smoke":  # tiny data, model and schedule: the one-step smoke test
            items = items[1:]
            for name, value in config.get("smoke", {}).items():
                config[name] = value
            config.dataset, config.batch_size, config.max_steps_per_phase = "digits", 64, 1
            config.plot, config.compare_kmeans, config.checkpoint_every = False, False, 0
        for item in items:
            name, value = item.split("=", 1)
            current = config[name]
            if isinstance(current, bool):
                config[name] = value.lower() in ("1", "true", "yes")
            elif current is None:
                config[name] = value
            else:
                config[name] = type(current)(value)
    return config


def deep_defaults(method: str) -> ml_collections.ConfigDict:
    """Fields of every deep-clustering config (data, mesh, logging, checkpoints)."""
    config = ml_collections.ConfigDict()
    config.method = method
    config.dataset = "mnist5k"  # "digits", "mnist5k", a path to an .npz file, or a data directory
    config.k = 10
    config.seed = 0
    config.batch_size = 256
    config.mesh = (("data", -1),)  # data parallel over every device
    config.checkpoint_every = 500  # steps; checkpoints also at each phase end
    config.log_every = 20
    config.eval_every = 0  # steps between evaluations; 0: at phase ends only
    config.resume = True  # continue from the newest checkpoint in the workdir, if any
    config.stop_after = -1  # stop as if killed after this many steps (resume tests); -1: never
    config.compare_kmeans = True  # add raw-pixel k-means as a baseline row
    config.plot = True
    config.max_steps_per_phase = -1  # cap on each phase's steps (smoke tests); -1: no cap
    config.imbalance_ratio = 1.0  # > 1: long-tailed subset (recipes.common.imbalanced_indices)
    return config


def add_augmentation(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The digit augmentations of the two-view recipes (``recipes.common.augment_options``):
    small affine warp and Gaussian noise; no flips or colour jitter, which digits do not allow."""
    config.aug_degrees = 15.0
    config.aug_translate = 0.1
    config.aug_zoom = 0.15
    config.aug_crop_scale = 0.0  # > 0: random resized crop with this minimum area
    config.aug_noise = 0.1
    return config


def phase_steps(config: ml_collections.ConfigDict, epochs: int, steps_per_epoch: int) -> int:
    """``epochs · steps_per_epoch``, capped by ``config.max_steps_per_phase`` when set."""
    steps = epochs * steps_per_epoch
    return steps if config.max_steps_per_phase < 0 else min(steps, config.max_steps_per_phase)
