"""Training data for SegGPT: procedural videos with exact ground truth (:mod:`.synthetic`) and the frame-pair
samplers that ``scripts/train.py`` and the demo draw from (:mod:`.samplers`). Not imported by the runtime."""
