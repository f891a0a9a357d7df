"""autorag_hp.service."""
