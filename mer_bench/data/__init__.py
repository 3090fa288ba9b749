"""Data: the sample table and ``SampleSet`` (``samples``), label schemes (``schemes``), the
dataset contract and registry (``registry``, ``datasets``), real loaders and their
folder/sheet readers (``loaders``, ``folders``), the MEGC2019 composite list
(``composite``) and the synthetic twins (``synthetic``)."""
