"""autorag_hp.evaluation."""
