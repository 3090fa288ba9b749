"""Method adapters (installed as ``mer_bench.methods``); importing registers them."""

from mer_bench.methods import flow_svm, majority, mcnet, mpfnet, protonet  # noqa: F401
