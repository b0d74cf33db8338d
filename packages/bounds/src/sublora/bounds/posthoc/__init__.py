"""Post-hoc bounds for a local Hugging Face causal LM (`sublora bound-model`, issue 13.2).

    predictor   load a local causal LM (clear errors) and call it as sublora's scorer calls its models
"""
