"""Networks and training machinery shared by the adapters: backbones, trainers, the
episode sampler, prototype classifiers and score fusion."""
