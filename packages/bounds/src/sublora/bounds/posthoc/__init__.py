"""Post-hoc bounds for a local Hugging Face causal LM (`sublora bound-model`, issue 13.2; docs/posthoc.md).

    predictor   load a local causal LM (clear errors) and call it as sublora's scorer calls its models
    settings    PosthocSettings: bound.* (quantizer, levels, coder, estimators, sample) + vector_levels, group_size
    data        the corpus (prepared dir, text folder or source spec) and the tokenizer-match check
    compress    quantize + code tensor by tensor into model.slc; decode it back into a network
    certify     bound_model(model_dir, data, out_dir): architecture.json, model.slc, evidence.npz, certificate.json
    verify      verify_posthoc(out_dir): what `sublora verify OUT` runs for a post-hoc certificate
"""
