"""autorag_hp.integrations."""
