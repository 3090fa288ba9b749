"""Data: the sample table and ``SampleSet`` (``samples``), label schemes (``schemes``), the
dataset contract and registry (``registry``, ``datasets``), real loaders and their
folder/sheet readers (``loaders``, ``folders``), the MEGC2019 composite list
(``composite``) and the synthetic twins (``synthetic``)."""

FACE_CROPS = ("detect", "none")
"""``--face-crop``: ``detect`` crops the faces of datasets distributed as whole frames
(the default); ``none`` uses every dataset's frames whole (your own face crops). Here,
not in ``folders``, so that the command line's parser imports no numpy or OpenCV (the
BLAS pools are sized before numpy loads: ``timing.size_pools_before_load``)."""
