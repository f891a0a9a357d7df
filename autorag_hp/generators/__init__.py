"""autorag_hp.generators."""
