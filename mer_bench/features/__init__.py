"""Features: frame operators (``operators``), the specs that describe a clip's input
(``specs``) and the content-addressed cache (``cache``). The specs and operators are
re-exported here: ``from mer_bench.features import onset_apex``."""

from mer_bench.features.operators import (
                                          CHANNELS,
                                          FLOW_METHODS,
                                          as_channels,
                                          frame_difference,
                                          grid_pool,
                                          magnify_frames,
                                          optical_flow,
                                          optical_strain,
                                          resample_frames,
                                          resize_channels,
                                          sequence_channels,
                                          synthesize_frames,
                                          to_gray,
                                          warp_backward,
)
from mer_bench.features.specs import (
                                          BiWOOFDescriptor,
                                          FeatureSpec,
                                          FlowGrid,
                                          FlowStrainMaps,
                                          FramePairs,
                                          FrameSequence,
                                          LBPTopDescriptor,
                                          OnsetApex,
                                          OnsetApexSequence,
                                          onset_apex,
)

__all__ = ["CHANNELS", "FLOW_METHODS", "BiWOOFDescriptor", "FeatureSpec",
           "FlowGrid", "FlowStrainMaps", "FramePairs", "FrameSequence", "LBPTopDescriptor",
           "OnsetApex", "OnsetApexSequence", "as_channels", "frame_difference", "grid_pool", "magnify_frames",
           "onset_apex", "optical_flow", "optical_strain", "resample_frames", "resize_channels",
           "sequence_channels", "synthesize_frames", "to_gray", "warp_backward"]
