"""autorag_hp.training."""
