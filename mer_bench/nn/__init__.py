"""Networks and training machinery shared by the adapters: backbones, trainers, the
episode sampler, prototype classifiers and score fusion; and the one linear-SVM adapter
body (``svm``, scikit-learn only: importing it loads no torch)."""
