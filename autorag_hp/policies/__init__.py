"""autorag_hp.policies."""
